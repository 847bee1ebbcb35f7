"""BILLING_ENGINE=lago and minimum commitments: plans and subscription overrides carry the
commitment to Lago (every request valid against Lago's spec, checked by the fake), and
Lago's invoice with its true-up reconciles with our rating of the same period. Lago's
references are in getlago/lago-api."""

from datetime import UTC, datetime

import pytest

from billing.invoicing.lago_mirror import lago_invoices_pull
from billing.invoicing.models import Invoice
from tests.factories import SubscriptionFactory
from tests.helpers.invoicing import NOV_1, OCT_1, close_periods
from tests.helpers.outbox import drain_outbox

pytestmark = pytest.mark.django_db
OCT_16 = datetime(2026, 10, 16, tzinfo=UTC)


@pytest.fixture
def engine(settings, lago, catalog):
    settings.BILLING_ENGINE = "lago"
    catalog.pro.minimum_commitment_amount_cents = 10_000
    catalog.pro.minimum_commitment_invoice_display_name = "Committed spend"
    catalog.pro.save()
    drain_outbox()  # the catalog and the customer reach Lago
    return lago


def _subscribe(catalog, external_id: str, start_at: datetime, overrides: dict | None = None):
    SubscriptionFactory(
        external_id=external_id,
        customer=catalog.acme,
        plan=catalog.pro,
        start_at=start_at,
        overrides=overrides or {},
    )
    drain_outbox()
    close_periods()
    drain_outbox()


def _created(engine, external_id: str) -> dict:
    return next(
        r["json"]["subscription"]
        for r in engine.requests
        if r["method"] == "POST"
        and r["path"] == "/api/v1/subscriptions"
        and r["json"]["subscription"]["external_id"] == external_id
    )


def test_the_plan_commitment_reaches_lago(client, engine, catalog):
    """Lago's PlanCreateInput/PlanUpdateInput `minimum_commitment` (MinimumCommitmentInput)."""
    held = engine.plans["pro"]["minimum_commitment"]
    assert (held["amount_cents"], held["invoice_display_name"]) == (10_000, "Committed spend")
    assert engine.plans["business"]["minimum_commitment"] is None

    response = client.patch(
        "/api/v1/plans/business/", {"minimum_commitment": {"amount_cents": 25_000}}, format="json"
    )
    assert response.status_code == 200, response.json()
    drain_outbox()
    assert engine.plans["business"]["minimum_commitment"]["amount_cents"] == 25_000
    sent = [r["json"]["plan"] for r in engine.requests if r["path"] == "/api/v1/plans/business"]
    assert sent[-1]["minimum_commitment"] == {"amount_cents": 25_000}


def test_any_override_carries_the_commitment_lago_would_otherwise_drop(engine, catalog):
    """Lago's overridden plan is a copy without the parent's commitment unless the
    overrides carry one (app/services/plans/override_service.rb): an amount override sends
    the plan's commitment along, a commitment override its own over the plan's."""
    _subscribe(catalog, "sub-amount", OCT_1, {"amount_cents": 3_000})
    _subscribe(catalog, "sub-commit", OCT_1, {"minimum_commitment": {"amount_cents": 20_000}})

    assert _created(engine, "sub-amount")["plan_overrides"] == {
        "amount_cents": 3_000,
        "minimum_commitment": {"amount_cents": 10_000, "invoice_display_name": "Committed spend"},
    }
    assert _created(engine, "sub-commit")["plan_overrides"] == {
        "minimum_commitment": {"amount_cents": 20_000, "invoice_display_name": "Committed spend"}
    }


@pytest.mark.parametrize(
    ("start_at", "overrides", "fixed_fee", "days", "true_up"),
    [
        # 16 of October's 31 days: 10_000 * 16/31 -> 5_161; 4_900 * 16/31 -> 2_529.
        (OCT_16, None, 2_529, (16, 31), 2_632),
        # October in full on a 30.00 override: 10_000 - 3_000.
        (OCT_1, {"amount_cents": 3_000}, 3_000, (31, 31), 7_000),
        # The override's own commitment: 20_000 - 4_900.
        (OCT_1, {"minimum_commitment": {"amount_cents": 20_000}}, 4_900, (31, 31), 15_100),
    ],
)
def test_lagos_true_up_reconciles_with_our_rating(
    engine, catalog, start_at, overrides, fixed_fee, days, true_up
):
    """Lago: Fees::Commitments::Minimum::CreateService on the period's invoice (in arrears,
    calendar monthly), commitment prorated by days (calculate_prorated_coefficient_service.rb),
    as the fake computes it from what we synced."""
    _subscribe(catalog, "sub-lago", start_at, overrides)
    issued = engine.issue_invoice(
        external_subscription_id="sub-lago",
        charges_from=start_at,
        charges_to=NOV_1,
        fees_amount_cents=0,
        fees=[{"type": "subscription", "code": "pro", "amount_cents": fixed_fee}],
        true_up_days=days,
    )
    assert [f["item"]["type"] for f in issued["fees"]] == ["subscription", "commitment"]
    assert issued["fees_amount_cents"] == fixed_fee + true_up

    lago_invoices_pull()

    invoice = Invoice.objects.get(lago_id=issued["lago_id"])
    assert invoice.reconciliation == "matched", invoice.reconciliation_note
    assert [(line.fee_type, line.description, line.amount_cents) for line in invoice.lines.all()][
        -1
    ] == ("commitment", "Committed spend", true_up)


def test_a_true_up_lago_did_not_bill_is_a_mismatch(engine, catalog):
    """Lago without the commitment (its invoice: the fee alone) against our rating with it."""
    _subscribe(catalog, "sub-lago", OCT_1)
    issued = engine.issue_invoice(
        external_subscription_id="sub-lago",
        charges_from=OCT_1,
        charges_to=NOV_1,
        fees_amount_cents=4_900,
    )

    lago_invoices_pull()

    invoice = Invoice.objects.get(lago_id=issued["lago_id"])
    assert invoice.reconciliation == "mismatch"
    assert "4900" in invoice.reconciliation_note and "10000" in invoice.reconciliation_note
