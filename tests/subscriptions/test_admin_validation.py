"""Plans, charges and metrics added or changed in the admin meet the API's rules and are
saved by the API's services (hardening: money safeguards, item 5)."""

import json

import pytest

from subscriptions import catalog
from subscriptions.models import BillableMetric, Charge, Plan
from tests.factories import (
    BillableMetricFactory,
    ChargeFactory,
    SubscriptionFactory,
)

pytestmark = pytest.mark.django_db

ADD_PLAN = "/admin/subscriptions/plan/add/"


def plan_form(*charges: dict, **values: str) -> dict[str, str]:
    """The admin's plan form as a browser posts it, with new charges in its inline."""
    data = {
        "code": "pro",
        "name": "Pro",
        "description": "",
        "interval": "monthly",
        "amount_cents": "4900",
        "currency": "USD",
        "trial_days": "0",
        "charges-TOTAL_FORMS": str(len(charges)),
        "charges-INITIAL_FORMS": "0",
        **values,
    }
    for index, charge in enumerate(charges):
        data[f"charges-{index}-metric"] = str(charge["metric"].pk)
        data[f"charges-{index}-charge_model"] = charge.get("charge_model", "standard")
        data[f"charges-{index}-properties"] = json.dumps(charge["properties"])
    return data


def errors_shown(response) -> list[str]:
    """The errors of the re-rendered form and of its charges' forms."""
    assert response.status_code == 200, response.status_code
    shown = [m for ms in response.context["adminform"].form.errors.values() for m in ms]
    for inline in response.context["inline_admin_formsets"]:
        for form_errors in inline.formset.errors:
            shown += [m for ms in form_errors.values() for m in ms]
    return shown


@pytest.mark.parametrize(
    "values, expected",
    [
        ({"amount_cents": str(10**13)}, "less than or equal to 1000000000000"),
        ({"amount_cents": "-1"}, "greater than or equal to 0"),
        ({"currency": "XYZ"}, "'XYZ' is not an ISO 4217 currency code."),
        ({"trial_days": "100000"}, "less than or equal to 3650"),
    ],
    ids=["fee above the bound", "negative fee", "unknown currency", "trial of 273 years"],
)
def test_plan_outside_the_api_bounds_is_refused(admin_client, values, expected):
    response = admin_client.post(ADD_PLAN, plan_form(**values))

    shown = errors_shown(response)
    assert any(expected in message for message in shown), shown
    assert not Plan.objects.exists()


def test_charge_with_an_out_of_bounds_price_is_refused(admin_client):
    metric = BillableMetricFactory()

    response = admin_client.post(
        ADD_PLAN, plan_form({"metric": metric, "properties": {"amount": "1e999999"}})
    )

    shown = errors_shown(response)
    assert any("amount must be at most 10,000" in message for message in shown), shown
    assert not Plan.objects.exists()
    assert not Charge.objects.exists()


def test_plan_and_charges_are_saved_by_the_service(admin_client, monkeypatch):
    metric = BillableMetricFactory()
    calls = []
    real_create = catalog.plan_create
    monkeypatch.setattr(catalog, "plan_create", lambda **kw: calls.append(kw) or real_create(**kw))

    response = admin_client.post(
        ADD_PLAN,
        plan_form({"metric": metric, "properties": {"amount": "0.25"}}, currency="eur"),
    )

    assert response.status_code == 302, errors_shown(response)
    plan = Plan.objects.get(code="pro")
    assert plan.currency == "EUR"  # upper-cased, as the API stores it
    assert [c["metric"] for c in calls[0]["charges"]] == [metric]
    assert list(plan.charges.values_list("metric", "properties")) == [
        (metric.pk, {"amount": "0.25"})
    ]


def test_charges_of_an_unused_plan_are_replaced_by_the_service(admin_client, monkeypatch):
    charge = ChargeFactory()
    plan = charge.plan
    calls = []
    real_update = catalog.plan_update
    monkeypatch.setattr(catalog, "plan_update", lambda **kw: calls.append(kw) or real_update(**kw))
    data = plan_form(code=plan.code, name="Renamed")
    data.update(
        {
            "charges-TOTAL_FORMS": "1",
            "charges-INITIAL_FORMS": "1",
            "charges-0-id": str(charge.pk),
            "charges-0-plan": str(plan.pk),
            "charges-0-metric": str(charge.metric.pk),
            "charges-0-charge_model": "standard",
            "charges-0-properties": json.dumps({"amount": "0.5"}),
        }
    )

    response = admin_client.post(f"/admin/subscriptions/plan/{plan.pk}/change/", data)

    assert response.status_code == 302, errors_shown(response)
    assert calls and calls[0]["name"] == "Renamed"
    assert [c.properties for c in Plan.objects.get(pk=plan.pk).charges.all()] == [{"amount": "0.5"}]


def test_metric_of_a_subscribed_plan_keeps_its_aggregation(admin_client):
    charge = ChargeFactory()
    SubscriptionFactory(plan=charge.plan)
    metric = charge.metric

    response = admin_client.post(
        f"/admin/subscriptions/billablemetric/{metric.pk}/change/",
        {
            "code": "renamed",
            "name": "Renamed",
            "description": "",
            "aggregation": "sum",
            "field_name": "value",
        },
    )

    # Frozen fields are read-only, as in the API: the rest saves, they do not change.
    assert response.status_code == 302
    stored = BillableMetric.objects.get(pk=metric.pk)
    assert (stored.code, stored.name, stored.aggregation) == (metric.code, "Renamed", "count")
