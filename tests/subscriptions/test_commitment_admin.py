"""The admin's plan form takes Lago's minimum commitment through the plan services, like
the API (its two fields: amount, and the true-up line's name)."""

import pytest

from subscriptions.models import Plan

pytestmark = pytest.mark.django_db


def _plan_form(**values: str) -> dict[str, str]:
    return {
        "code": "committed",
        "name": "Committed",
        "description": "",
        "interval": "monthly",
        "amount_cents": "4900",
        "currency": "USD",
        "trial_days": "0",
        "charges-TOTAL_FORMS": "0",
        "charges-INITIAL_FORMS": "0",
        **values,
    }


def test_the_admin_creates_a_plan_with_a_commitment(admin_client):
    response = admin_client.post(
        "/admin/subscriptions/plan/add/",
        _plan_form(
            minimum_commitment_amount_cents="10000",
            minimum_commitment_invoice_display_name="Committed spend",
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    plan = Plan.objects.get(code="committed")
    assert (plan.minimum_commitment_amount_cents, plan.minimum_commitment_invoice_display_name) == (
        10_000,
        "Committed spend",
    )


def test_the_admin_refuses_a_commitment_of_zero(admin_client):
    response = admin_client.post(
        "/admin/subscriptions/plan/add/", _plan_form(minimum_commitment_amount_cents="0")
    )

    assert response.status_code == 200
    assert "minimum_commitment_amount_cents" in response.context["adminform"].form.errors
    assert not Plan.objects.filter(code="committed").exists()
