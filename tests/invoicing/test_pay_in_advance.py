"""Pay in advance billed when a period starts, as Lago bills it: at the start (after any
trial), at each renewal with the usage of the period that ended, and at once on an
upgrade. Amounts are computed by hand, by whole days (see billing/invoicing/rating.py)."""

from datetime import UTC, datetime

import pytest
import time_machine

from billing.invoicing.billing_run import billing_run
from billing.invoicing.models import Invoice
from billing.invoicing.selectors import billing_backlog
from subscriptions.models import SubscriptionPeriod
from tests.factories import ChargeFactory, PlanFactory
from tests.helpers.invoicing import NOV_1, OCT_1, close_periods, record, subscribe

pytestmark = pytest.mark.django_db

OCT_16 = datetime(2026, 10, 16, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


def _run_at(moment: datetime):
    with time_machine.travel(moment, tick=False):
        close_periods(moment)
        return billing_run()


def _invoices(external_id: str) -> list[list[tuple[str, int]]]:
    """Each invoice of the subscription, by number (the order issued), as (description, cents)."""
    return [
        [(line.description, line.amount_cents) for line in invoice.lines.order_by("position")]
        for invoice in Invoice.objects.filter(subscription__external_id=external_id).order_by(
            "number"
        )
    ]


@pytest.fixture
def advance(catalog):
    """30.00 a month in advance, with the catalog's 0.002 a call."""
    plan = PlanFactory(code="advance", name="Advance", amount_cents=3000, pay_in_advance=True)
    ChargeFactory(plan=plan, metric=catalog.api_calls, properties={"amount": "0.002"})
    return plan


def test_the_first_fee_is_invoiced_at_the_start_without_the_grace_wait(
    client, catalog, advance, settings
):
    """Subscriptions::ActivateService#activate_standalone bills a pay-in-advance plan at
    once (#first_subscription_amount: from the start's day to the period's end)."""
    settings.INVOICE_GRACE_MINUTES = 60
    start = datetime(2026, 10, 16, 10, tzinfo=UTC)
    subscribe(client, "sub-open", "advance", start)
    subscribe(client, "sub-arrears", "pro", start)

    report = _run_at(start)

    # October 16 to 31: 16 of 31 days of 30.00, 1548.39 -> 1548; the plan in arrears
    # waits for its period's end.
    assert (report.generated, report.finalized) == (1, 1)
    assert _invoices("sub-open") == [[("Advance in advance", 1548)]]
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.period_start, invoice.period_end) == ("finalized", start, start)
    assert invoice.lines.get().from_datetime == start
    assert invoice.lines.get().to_datetime == NOV_1


def test_a_renewal_bills_the_next_period_with_the_usage_of_the_one_that_ended(
    client, catalog, advance
):
    """Lago's renewal invoice: the next period's fee in advance (#full_period_amount) and
    the charges of the period that ended, on one invoice; the first period is not billed
    again at its end."""
    subscribe(client, "sub-renew", "advance", OCT_16)
    _run_at(OCT_16)
    with time_machine.travel(datetime(2026, 10, 20, tzinfo=UTC), tick=False):
        record(client, "sub-renew", "api_calls", [(datetime(2026, 10, 20, tzinfo=UTC), {})] * 100)

    _run_at(datetime(2026, 11, 2, tzinfo=UTC))

    assert _invoices("sub-renew") == [
        [("Advance in advance", 1548)],
        # 100 calls at 0.002: 0.20; November whole, ahead.
        [("api_calls", 20), ("Advance in advance (next period)", 3000)],
    ]


def test_a_yearly_plan_is_billed_for_its_year_when_it_starts(client, catalog):
    """No year of credit: a yearly plan in advance is invoiced at the start. Calendar
    years: July 1 to December 31 of 2026, 184 of 365 days of 1,200.00: 60493.15."""
    PlanFactory(
        code="yearly", name="Yearly", interval="yearly", amount_cents=120000, pay_in_advance=True
    )
    start = datetime(2026, 7, 1, tzinfo=UTC)
    subscribe(client, "sub-year", "yearly", start)

    _run_at(start)

    assert _invoices("sub-year") == [[("Yearly in advance", 60493)]]


def test_a_trial_moves_the_first_fee_to_its_end(client, catalog):
    """Lago bills nothing while in trial (ActivateService#bill_subscription checks
    in_trial_period?) and bills the fee when the trial ends (FreeTrialBillingService),
    from the trial's last day: October 26 to 31, 6 of 31 days of 30.00, 580.65 -> 581."""
    PlanFactory(code="trial", name="Trial", amount_cents=3000, pay_in_advance=True, trial_days=10)
    subscribe(client, "sub-trial", "trial", OCT_16)
    with time_machine.travel(datetime(2026, 10, 25, tzinfo=UTC), tick=False):
        queued_ahead = billing_backlog().unbilled_periods

    during = _run_at(datetime(2026, 10, 25, tzinfo=UTC))
    after = _run_at(datetime(2026, 10, 26, tzinfo=UTC))
    _run_at(datetime(2026, 11, 2, tzinfo=UTC))

    assert queued_ahead == 0  # the trial's end is queued, but not due: no backlog
    assert during.generated == 0 and after.generated == 1
    assert _invoices("sub-trial") == [
        [("Trial in advance", 581)],
        [("Trial in advance (next period)", 3000)],
    ]


def test_a_trial_over_a_renewal_bills_from_its_end_not_at_the_renewal(client, catalog):
    """A renewal in the middle of a trial bills no fee (Invoices::CalculateFeesService
    #in_trial_period_not_ending_today?); the trial's end (November 15) bills November 15
    to 30: 16 of 30 days of 30.00."""
    PlanFactory(
        code="long-trial", name="Long", amount_cents=3000, pay_in_advance=True, trial_days=30
    )
    subscribe(client, "sub-long", "long-trial", OCT_16)

    _run_at(datetime(2026, 11, 2, tzinfo=UTC))
    _run_at(datetime(2026, 11, 15, tzinfo=UTC))
    _run_at(datetime(2026, 12, 2, tzinfo=UTC))

    assert _invoices("sub-long") == [
        [],  # October's end: all in trial, no usage
        [("Long in advance", 1600)],
        [("Long in advance (next period)", 3000)],
    ]


def test_a_termination_in_trial_drops_the_trial_end_invoice(client, catalog):
    """Subscriptions::FreeTrialBillingService bills only active subscriptions
    (`subscriptions.status = 1`), and CreditNotes::CreateFromTermination credits nothing
    when no subscription fee was billed: nothing is billed or credited."""
    PlanFactory(code="trial", name="Trial", amount_cents=3000, pay_in_advance=True, trial_days=10)
    subscribe(client, "sub-quit", "trial", OCT_16)
    with time_machine.travel(datetime(2026, 10, 20, tzinfo=UTC), tick=False):
        response = client.post(
            "/api/v1/subscriptions/sub-quit/cancel/", {"at_period_end": False}, format="json"
        )
        assert response.status_code == 200, response.json()

    _run_at(datetime(2026, 10, 30, tzinfo=UTC))

    assert not SubscriptionPeriod.objects.filter(reason="advance").exists()
    assert _invoices("sub-quit") == [[]]


def test_an_upgrade_to_a_plan_in_advance_is_invoiced_at_once(client, catalog, settings):
    """#activate_for_upgrade bills the new plan at once, from the upgrade's day
    (#upgraded_amount): October 11 to 31, 21 of 31 days of 99.00, 6706.45 -> 6706. The
    old plan in arrears is billed at the period's end for October 1 to 10 (the upgrade day
    is the new plan's): 10 of 31 days of 49.00, 1580.65 -> 1581. Usage before the upgrade
    is still open and the old plan still frozen: only the period's end invoices them."""
    settings.INVOICE_GRACE_MINUTES = 60
    plan = PlanFactory(code="premium", name="Premium", amount_cents=9900, pay_in_advance=True)
    ChargeFactory(plan=plan, metric=catalog.api_calls, properties={"amount": "0.002"})
    subscribe(client, "sub-up", "pro", OCT_1)
    upgrade_at = datetime(2026, 10, 11, 12, tzinfo=UTC)
    with time_machine.travel(upgrade_at, tick=False):
        response = client.patch("/api/v1/subscriptions/sub-up/", {"plan": "premium"}, format="json")
        assert response.status_code == 200, response.json()

    at_once = _run_at(upgrade_at)
    with time_machine.travel(datetime(2026, 10, 12, tzinfo=UTC), tick=False):
        record(client, "sub-up", "api_calls", [(datetime(2026, 10, 5, tzinfo=UTC), {})] * 10)
        frozen = client.patch("/api/v1/plans/pro/", {"amount_cents": 1}, format="json")
    _run_at(datetime(2026, 11, 2, tzinfo=UTC))

    assert at_once.generated == 1
    assert frozen.status_code == 409
    assert _invoices("sub-up") == [
        [("Premium in advance", 6706)],
        [
            ("Pro in arrears", 1581),
            ("api_calls", 2),
            ("tokens", 0),
            ("api_calls", 0),
            ("Premium in advance (next period)", 9900),
        ],
    ]


def test_an_upgrade_to_another_interval_credits_the_month_and_bills_the_year(
    client, catalog, advance
):
    """Monthly in advance to yearly in advance on October 11: October 11 to 31 of the
    month are credited, 21 of 31 days of 30.00, 2032.26 -> 2032; the year is billed from
    October 11 to December 31 (calendar), 82 of 365 days of 1,200.00, 26958.90 -> 26959.
    October 1 to 10 was paid at the start: its end invoice bills only usage."""
    PlanFactory(
        code="yearly", name="Yearly", interval="yearly", amount_cents=120000, pay_in_advance=True
    )
    subscribe(client, "sub-year-up", "advance", OCT_1)
    _run_at(OCT_1)
    upgrade_at = datetime(2026, 10, 11, tzinfo=UTC)
    with time_machine.travel(upgrade_at, tick=False):
        response = client.patch(
            "/api/v1/subscriptions/sub-year-up/", {"plan": "yearly"}, format="json"
        )
        assert response.status_code == 200, response.json()

    _run_at(datetime(2026, 10, 12, tzinfo=UTC))

    assert _invoices("sub-year-up") == [
        [("Advance in advance", 3000)],
        [("api_calls", 0)],
        [("Advance unused time (credit)", -2032), ("Yearly in advance", 26959)],
    ]


def test_an_upgrade_at_the_renewal_instant_is_billed_once(client, catalog, advance):
    """The renewal bills the plan it renewed (Advance, November ahead); the upgrade made
    at that same instant then credits it whole and bills Advance-plus whole, at once."""
    PlanFactory(code="advance-plus", name="Plus", amount_cents=6000, pay_in_advance=True)
    subscribe(client, "sub-edge", "advance", OCT_1)
    _run_at(OCT_1)
    with time_machine.travel(NOV_1, tick=False):
        response = client.patch(
            "/api/v1/subscriptions/sub-edge/", {"plan": "advance-plus"}, format="json"
        )
        assert response.status_code == 200, response.json()

    _run_at(datetime(2026, 11, 2, tzinfo=UTC))

    assert _invoices("sub-edge") == [
        [("Advance in advance", 3000)],
        [("api_calls", 0), ("Advance in advance (next period)", 3000)],
        [("Advance unused time (credit)", -3000), ("Plus in advance", 6000)],
    ]


def test_a_downgrade_is_billed_ahead_by_the_renewal_it_takes_effect_at(client, catalog, advance):
    """Lago applies a downgrade at the period's end and bills the new plan then
    (#activate_for_downgrade): the renewal bills November on Advance, not on Plus."""
    PlanFactory(code="advance-plus", name="Plus", amount_cents=6000, pay_in_advance=True)
    subscribe(client, "sub-down", "advance-plus", OCT_1)
    with time_machine.travel(datetime(2026, 10, 20, tzinfo=UTC), tick=False):
        response = client.patch(
            "/api/v1/subscriptions/sub-down/", {"plan": "advance"}, format="json"
        )
        assert response.status_code == 200, response.json()

    _run_at(datetime(2026, 11, 2, tzinfo=UTC))

    assert _invoices("sub-down") == [
        [("Plus in advance", 6000)],
        [("Advance in advance (next period)", 3000)],
    ]


def test_a_scheduled_start_is_billed_when_it_starts(client, catalog, advance):
    """Subscriptions::ActivateAllPendingService activates it on its day, and
    ActivateService#bill_subscription bills it then: 16 of 31 days of 30.00, 1548."""
    with time_machine.travel(OCT_1, tick=False):
        response = client.post(
            "/api/v1/subscriptions/",
            {
                "external_id": "sub-later",
                "customer": "acme",
                "plan": "advance",
                "start_at": OCT_16.isoformat(),
            },
            format="json",
        )
        assert response.status_code == 201, response.json()

    before = _run_at(datetime(2026, 10, 15, tzinfo=UTC))
    _run_at(OCT_16)

    assert before.generated == 0
    assert _invoices("sub-later") == [[("Advance in advance", 1548)]]


def test_a_back_dated_start_bills_its_past_and_the_current_period_at_once(client, catalog):
    """Three past periods of 30.00 on the catch-up invoice (not billed ahead: they were
    never started), and November ahead, at once. Lago differs here: a pay-in-advance plan
    started in the past is billed a full period (Fees::SubscriptionService
    #should_use_full_amount?, started_in_past?); ours bills August to October whole and
    November whole, so the two agree on a start on a period's first day, as here."""
    PlanFactory(code="plain", name="Plain", amount_cents=3000, pay_in_advance=True)
    with time_machine.travel(datetime(2026, 11, 15, tzinfo=UTC), tick=False):
        response = client.post(
            "/api/v1/subscriptions/",
            {
                "external_id": "sub-past",
                "customer": "acme",
                "plan": "plain",
                "start_at": datetime(2026, 8, 1, tzinfo=UTC).isoformat(),
                "bill_past_periods": True,
            },
            format="json",
        )
        assert response.status_code == 201, response.json()

    _run_at(datetime(2026, 11, 15, tzinfo=UTC))
    _run_at(datetime(2026, 12, 2, tzinfo=UTC))

    assert _invoices("sub-past") == [
        [("Plain in advance", 9000)],
        [("Plain in advance", 3000)],
        [("Plain in advance (next period)", 3000)],
    ]


def test_a_reactivation_is_billed_ahead_from_its_day(client, catalog, advance):
    """Terminated on October 10 (credited October 11 to 31, 21 of 31 days: 2032.26), then
    reactivated on October 20: October 20 to 31, 12 of 31 days, 1161.29 -> 1161."""
    subscribe(client, "sub-again", "advance", OCT_1)
    _run_at(OCT_1)
    with time_machine.travel(datetime(2026, 10, 10, 9, tzinfo=UTC), tick=False):
        response = client.post(
            "/api/v1/subscriptions/sub-again/cancel/", {"at_period_end": False}, format="json"
        )
        assert response.status_code == 200, response.json()
    with time_machine.travel(datetime(2026, 10, 20, 9, tzinfo=UTC), tick=False):
        response = client.post("/api/v1/subscriptions/sub-again/reactivate/")
        assert response.status_code == 200, response.json()

    _run_at(datetime(2026, 10, 21, tzinfo=UTC))

    assert _invoices("sub-again") == [
        [("Advance in advance", 3000)],
        [("Advance unused time (credit)", -2032), ("api_calls", 0)],
        [("Advance in advance", 1161)],
    ]


def test_a_credit_after_an_overrides_change_gives_back_what_was_prepaid(client, catalog, advance):
    """A change of overrides bills nothing (Lago swaps the plan) and continues the prepaid
    stretch: the credit for unused days is of what was billed ahead, not of the new
    override, which was never billed (CreditNotes::CreateFromTermination credits the last
    subscription fee). October: prepaid 3000 at the start; on Oct 10 the fee becomes
    60.00; terminated Oct 20: Oct 21-31 unused, 11 of 31 days of 30.00 = 1064.52 -> 1065
    (the new fee would have credited 2129)."""
    subscribe(client, "sub-over", "advance", OCT_1)
    _run_at(OCT_1)
    with time_machine.travel(datetime(2026, 10, 10, tzinfo=UTC), tick=False):
        changed = client.patch(
            "/api/v1/subscriptions/sub-over/", {"overrides": {"amount_cents": 6000}}, format="json"
        )
        assert changed.status_code == 200, changed.json()
    with time_machine.travel(datetime(2026, 10, 20, tzinfo=UTC), tick=False):
        client.post(
            "/api/v1/subscriptions/sub-over/cancel/", {"at_period_end": False}, format="json"
        )
    _run_at(datetime(2026, 10, 21, tzinfo=UTC))

    credits = [cents for invoice in _invoices("sub-over") for _, cents in invoice if cents < 0]
    assert credits == [-1065]


def test_a_start_the_beat_missed_closes_each_period_it_passed(client, catalog):
    """A pending subscription started late (beat behind) renews its ended periods one by
    one, so no period row spans a boundary: due Oct 31 12:00, started on Nov 20."""
    from subscriptions.models import Subscription
    from subscriptions.services import subscription_as_of

    with time_machine.travel(datetime(2026, 10, 20, tzinfo=UTC), tick=False):
        created = client.post(
            "/api/v1/subscriptions/",
            {
                "external_id": "sub-late",
                "customer": "acme",
                "plan": "pro",
                "start_at": "2026-10-31T12:00:00Z",
            },
            format="json",
        )
        assert created.json()["status"] == "pending"
    now = datetime(2026, 11, 20, tzinfo=UTC)

    with time_machine.travel(now, tick=False):
        subscription = subscription_as_of(subscription=Subscription.objects.get(), now=now)

    assert subscription.status == "active"
    assert subscription.current_period_start == NOV_1
    assert list(SubscriptionPeriod.objects.values_list("start", "end", "reason")) == [
        (datetime(2026, 10, 31, 12, tzinfo=UTC), NOV_1, "renewed")
    ]


def test_an_upgrade_after_an_overrides_change_credits_what_was_prepaid(client, catalog, advance):
    """As above, for an upgrade (its credit runs from the upgrade day included,
    CreditNotes::CreateFromTermination#remaining_duration): prepaid 30.00 on Oct 1, the
    fee overridden to 60.00 on Oct 10, upgraded on Oct 20 to 90.00 in advance. Credit:
    Oct 20-31, 12 of 31 days of 30.00 = 1161.29 -> -1161 (not 2323 of the override);
    the new plan: 12 of 31 days of 90.00 = 3483.87 -> 3484."""
    PlanFactory(code="advance-plus", name="Advance plus", amount_cents=9000, pay_in_advance=True)
    subscribe(client, "sub-over-up", "advance", OCT_1)
    _run_at(OCT_1)
    with time_machine.travel(datetime(2026, 10, 10, tzinfo=UTC), tick=False):
        client.patch(
            "/api/v1/subscriptions/sub-over-up/",
            {"overrides": {"amount_cents": 6000}},
            format="json",
        )
    with time_machine.travel(datetime(2026, 10, 20, tzinfo=UTC), tick=False):
        upgraded = client.patch(
            "/api/v1/subscriptions/sub-over-up/", {"plan": "advance-plus"}, format="json"
        )
        assert upgraded.status_code == 200, upgraded.json()
    _run_at(datetime(2026, 10, 20, 1, tzinfo=UTC))

    upgrade_invoice = _invoices("sub-over-up")[-1]
    assert sorted(cents for _, cents in upgrade_invoice) == [-1161, 3484]
