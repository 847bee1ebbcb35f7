"""Minimum commitments end to end with the local engine: set on a plan through the API,
overridden per subscription, billed as a `commitment` true-up line (API, PDF). Lago's
references are in getlago/lago-api (spec/scenarios/commitments/minimum/**)."""

from datetime import UTC, datetime

import pytest
import time_machine

from billing.invoicing.models import Invoice
from billing.invoicing.pdf import invoice_html
from subscriptions.models import Plan
from tests.helpers.invoicing import NOV_15, OCT_1, amounts, close_periods, generate, subscribe

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _on_november_15():
    with time_machine.travel(NOV_15, tick=True):
        yield


def _commit(client, plan: str, commitment) -> dict:
    response = client.patch(
        f"/api/v1/plans/{plan}/", {"minimum_commitment": commitment}, format="json"
    )
    assert response.status_code == 200, response.json()
    return response.json()


def test_the_plan_api_sets_shows_and_removes_a_commitment(client, catalog):
    body = _commit(client, "pro", {"amount_cents": 10_000, "invoice_display_name": "Committed"})
    assert body["minimum_commitment"] == {
        "amount_cents": 10_000,
        "invoice_display_name": "Committed",
    }
    assert client.get("/api/v1/plans/business/").json()["minimum_commitment"] is None

    assert _commit(client, "pro", None)["minimum_commitment"] is None
    catalog.pro.refresh_from_db()
    assert catalog.pro.minimum_commitment_amount_cents is None
    assert catalog.pro.minimum_commitment_invoice_display_name == ""


@pytest.mark.parametrize(
    "commitment",
    [
        {"amount_cents": 0},
        {"amount_cents": -1},
        {"amount_cents": 10**12 + 1},
        {"amount_cents": "ten"},
        {"invoice_display_name": "no amount"},
    ],
)
def test_a_commitment_must_be_a_positive_amount(client, catalog, commitment):
    """Lago's Commitment validates amount_cents > 0 (app/models/commitment.rb), and its
    MinimumCommitmentInput requires it (also in a PATCH)."""
    response = client.patch("/api/v1/plans/pro/", {"minimum_commitment": commitment}, format="json")
    assert response.status_code == 400, response.json()
    catalog.pro.refresh_from_db()
    assert catalog.pro.minimum_commitment_amount_cents is None


def test_the_commitment_of_a_plan_in_use_is_frozen(client, catalog):
    subscribe(client, "sub-frozen", "pro", OCT_1)
    response = client.patch(
        "/api/v1/plans/pro/", {"minimum_commitment": {"amount_cents": 5_000}}, format="json"
    )
    assert response.status_code == 409, response.json()
    error = response.json()["errors"][0]
    assert error["code"] == "plan_in_use" and "minimum_commitment_amount_cents" in str(error)


def test_a_short_partial_period_gets_a_prorated_true_up_line(client, catalog):
    """Lago: spec/scenarios/commitments/minimum/in_arrears/calendar/monthly_spec.rb (a
    partial first period). Pro (49.00 in arrears) with a 100.00 commitment, subscribed on
    2026-10-16: 16 of October's 31 days. Commitment 10_000 * 16/31 = 5_161.29 -> 5_161;
    fee 4_900 * 16/31 -> 2_529; no usage; true-up 5_161 - 2_529 = 2_632."""
    _commit(client, "pro", {"amount_cents": 10_000})
    subscribe(client, "sub-short", "pro", datetime(2026, 10, 16, tzinfo=UTC))
    close_periods()

    code, invoice = generate(client, "sub-short")

    assert code == 201, invoice
    assert amounts(invoice) == [
        ("Pro in arrears", 2_529),
        ("api_calls", 0),
        ("tokens", 0),
        ("Minimum commitment", 2_632),
    ]
    line = invoice["lines"][-1]
    assert (line["fee_type"], line["plan_code"], line["units"], line["unit_amount"]) == (
        "commitment",
        "pro",
        "1.000000000000",
        "26.320000000000",
    )
    assert invoice["subtotal_amount_cents"] == 5_161
    html = invoice_html(invoice=Invoice.objects.get(pk=invoice["id"]))
    assert "Minimum commitment" in html and "minimum commitment true-up" in html


def test_a_subscription_override_replaces_the_plan_commitment(client, catalog):
    """Lago: subscription `plan_overrides.minimum_commitment` (app/services/plans/
    override_service.rb). The override's 200.00 named "Acme minimum" over the plan's 100.00,
    October in full: 20_000 - 4_900 = 15_100."""
    _commit(client, "pro", {"amount_cents": 10_000})
    with time_machine.travel(OCT_1, tick=False):
        response = client.post(
            "/api/v1/subscriptions/",
            {
                "external_id": "sub-override",
                "customer": "acme",
                "plan": "pro",
                "start_at": OCT_1.isoformat(),
                "overrides": {
                    "minimum_commitment": {
                        "amount_cents": 20_000,
                        "invoice_display_name": "Acme minimum",
                    }
                },
            },
            format="json",
        )
    assert response.status_code == 201, response.json()
    close_periods()

    code, invoice = generate(client, "sub-override")

    assert code == 201, invoice
    assert amounts(invoice)[-1] == ("Acme minimum", 15_100)
    assert invoice["subtotal_amount_cents"] == 20_000


def test_an_override_mid_period_commits_the_whole_period(client, catalog):
    """Lago switches the subscription to the overridden plan (Subscriptions::UpdateService,
    Plans::OverrideService), whose commitment the period's invoice then trues up over the
    whole period. Overridden on 2026-10-16 with only an amount (the line takes Lago's default
    name): fees 4_900 * 15/31 -> 2_371 and 4_900 * 16/31 -> 2_529; 5_000 - 4_900 = 100."""
    subscribe(client, "sub-add", "pro", OCT_1)
    with time_machine.travel(datetime(2026, 10, 16, tzinfo=UTC), tick=False):
        response = client.patch(
            "/api/v1/subscriptions/sub-add/",
            {"overrides": {"minimum_commitment": {"amount_cents": 5_000}}},
            format="json",
        )
    assert response.status_code == 200, response.json()
    close_periods()

    code, invoice = generate(client, "sub-add")

    assert code == 201, invoice
    assert amounts(invoice) == [
        ("Pro in arrears", 2_371),
        ("api_calls", 0),
        ("tokens", 0),
        ("Pro in arrears", 2_529),
        ("api_calls", 0),
        ("tokens", 0),
        ("Minimum commitment", 100),
    ]


@pytest.mark.parametrize(
    "override",
    [
        {"amount_cents": 0},
        {"invoice_display_name": "no amount"},
        {"amount_cents": 100, "tax_codes": ["vat"]},
        {"amount_cents": 100, "invoice_display_name": 7},
        "100",
    ],
)
def test_bad_commitment_overrides_are_refused(client, catalog, override):
    response = client.post(
        "/api/v1/subscriptions/",
        {
            "external_id": "sub-bad",
            "customer": "acme",
            "plan": "pro",
            "overrides": {"minimum_commitment": override},
        },
        format="json",
    )
    assert response.status_code == 400, response.json()
    assert "minimum_commitment" in str(response.json())


def test_plans_without_a_commitment_bill_as_before(client, catalog):
    subscribe(client, "sub-plain", "pro", OCT_1)
    close_periods()
    code, invoice = generate(client, "sub-plain")
    assert code == 201
    assert [line["fee_type"] for line in invoice["lines"]] == ["subscription", "charge", "charge"]
    assert Plan.objects.get(code="pro").minimum_commitment_amount_cents is None
