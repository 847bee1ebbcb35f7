"""The billing run by the page (billing/invoicing/pages.py): a page is rated exactly as its
periods would be one at a time, written with a fixed number of statements, lost whole to
a crash and billed once on the retry, and shared between workers with no double invoice
and no gap in the numbers."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.invoicing import pages
from billing.invoicing.billing_run import billing_run
from billing.invoicing.inputs import period_input
from billing.invoicing.models import Invoice, InvoiceSequence
from billing.invoicing.rating import rate_period
from billing.invoicing.totals import totals_of
from subscriptions.models import SubscriptionPeriod
from tests.factories import BillableMetricFactory, ChargeFactory, CustomerFactory, PlanFactory
from tests.helpers.concurrency import race
from tests.helpers.invoicing import NOV_15, OCT_1, close_periods, record, subscribe

pytestmark = pytest.mark.django_db
PLANS = ("pro", "business", "starter")


@pytest.fixture(autouse=True)
def _on_november_15():
    with time_machine.travel(NOV_15, tick=True):
        yield


class ProcessDied(BaseException):
    """What a killed worker looks like to the run: nothing it catches."""


def _subscriptions(client, count: int, prefix: str = "sub") -> list[str]:
    ids = []
    for index in range(count):
        external_id = f"{prefix}-{index}"
        subscribe(client, external_id, PLANS[index % 3], OCT_1 + timedelta(days=index % 5))
        ids.append(external_id)
    close_periods()
    return ids


def _numbers() -> list[str]:
    return sorted(Invoice.objects.values_list("number", flat=True))


def _expected_numbers(count: int) -> list[str]:
    return [f"AIP-{n:06d}" for n in range(1, count + 1)]


def test_a_page_rates_every_period_as_it_would_be_rated_alone(client, catalog):
    """Arrears with usage, a start mid-period, pay in advance, an upgrade mid-period and a
    recurring metric, in pages of 3: every invoice equals the one-period rating, which
    reads everything itself."""
    advance = PlanFactory(code="advance", name="Advance", amount_cents=3000, pay_in_advance=True)
    ChargeFactory(plan=advance, metric=catalog.api_calls, properties={"amount": "0.002"})
    seats = BillableMetricFactory(
        code="seats", aggregation="sum", field_name="seats", recurring=True
    )
    seated = PlanFactory(code="seated", name="Seated", amount_cents=1000)
    ChargeFactory(plan=seated, metric=seats, properties={"amount": "2"})
    subscribe(client, "s-usage", "pro", OCT_1)
    subscribe(client, "s-mid", "starter", datetime(2026, 10, 12, tzinfo=UTC))
    subscribe(client, "s-advance", "advance", OCT_1)
    subscribe(client, "s-upgrade", "starter", OCT_1)
    subscribe(client, "s-seats", "seated", datetime(2026, 9, 1, tzinfo=UTC))
    day = datetime(2026, 10, 5, tzinfo=UTC)
    record(client, "s-usage", "api_calls", [(day, {})] * 7)
    record(client, "s-usage", "tokens", [(day, {"tokens": 1500}), (day, {"tokens": 700})])
    record(client, "s-advance", "api_calls", [(day, {})] * 3)
    record(client, "s-seats", "seats", [(datetime(2026, 9, 3, tzinfo=UTC), {"seats": 4})])
    with time_machine.travel(datetime(2026, 10, 20, tzinfo=UTC), tick=False):
        response = client.patch(
            "/api/v1/subscriptions/s-upgrade/", {"plan": "business"}, format="json"
        )
        assert response.status_code == 200, response.json()
    close_periods()

    report = billing_run(batch_size=3)

    assert report.failed == 0, report.errors
    periods = SubscriptionPeriod.objects.select_related("subscription__customer").order_by("pk")
    assert periods.filter(billed_at__isnull=True).count() == 0
    checked = 0
    for period in periods:
        invoice = Invoice.objects.get(
            subscription=period.subscription, period_start=period.start, period_end=period.end
        )
        fees = rate_period(period_input(subscription=period.subscription, period=period))
        alone = [(f.description, f.units, f.amount_cents) for f in fees]
        paged = [(li.description, li.units, li.amount_cents) for li in invoice.lines.all()]
        assert paged == alone, period.subscription.external_id
        totals = totals_of(fees=fees, tax_rate=period.subscription.customer.tax_rate)
        assert invoice.total_amount_cents == totals.total_amount_cents
        checked += 1
    assert checked == SubscriptionPeriod.objects.count() >= 6
    amounts = dict(
        Invoice.objects.filter(subscription__external_id="s-usage").values_list(
            "subscription__external_id", "fees_amount_cents"
        )
    )
    # 49.00 + 7 calls at 0.002 (0.014 -> 0.01) + 1,200 tokens beyond 1,000: 1.00 + 0.12.
    assert amounts == {"s-usage": 4900 + 1 + 112}
    assert _numbers() == _expected_numbers(checked)


def test_statements_per_page_do_not_grow_with_the_page(client, catalog):
    _subscriptions(client, 3, prefix="small")
    with CaptureQueriesContext(connection) as small:
        assert billing_run(batch_size=100).generated == 3
    _subscriptions(client, 12, prefix="large")
    with CaptureQueriesContext(connection) as large:
        assert billing_run(batch_size=100).generated == 12

    assert len(large.captured_queries) == len(small.captured_queries) < 30, [
        q["sql"][:120] for q in large.captured_queries
    ]
    assert _numbers() == _expected_numbers(15)


def test_a_crash_loses_the_page_in_hand_and_the_retry_bills_each_period_once(
    client, catalog, monkeypatch
):
    _subscriptions(client, 5)
    issued = pages.issue_many
    calls = []

    def dies_on_the_second_page(invoices, now):
        calls.append(len(invoices))
        issued(invoices, now)  # the numbers are taken, the invoices issued...
        if len(calls) == 2:
            raise ProcessDied  # ...and the worker is killed before the commit

    monkeypatch.setattr(pages, "issue_many", dies_on_the_second_page)
    with pytest.raises(ProcessDied):
        billing_run(batch_size=2)
    monkeypatch.undo()

    # The first page committed; the second left nothing: no invoice, no number used.
    assert _numbers() == _expected_numbers(2)
    assert SubscriptionPeriod.objects.filter(billed_at__isnull=True).count() == 3
    assert InvoiceSequence.objects.get().next_value == 3

    retried = billing_run(batch_size=2)

    assert (retried.periods, retried.generated, retried.finalized) == (3, 3, 3)
    assert _numbers() == _expected_numbers(5)
    for period in SubscriptionPeriod.objects.all():
        assert period.billed_at is not None
        assert (
            Invoice.objects.filter(
                subscription_id=period.subscription_id, period_start=period.start
            ).count()
            == 1
        )


def test_a_page_that_fails_is_billed_one_period_at_a_time(client, catalog, monkeypatch):
    _subscriptions(client, 5)

    def broken(invoices, now):
        raise RuntimeError("a bug in the bulk path")

    monkeypatch.setattr(pages, "issue_many", broken)
    report = billing_run(batch_size=3)

    assert (report.periods, report.generated, report.finalized, report.failed) == (5, 5, 5, 0)
    assert _numbers() == _expected_numbers(5)
    assert set(Invoice.objects.values_list("status", flat=True)) == {"finalized"}


def test_customers_with_credits_are_billed_one_at_a_time_in_the_page(client, catalog):
    """A wallet's credits are taken as the invoice is issued, as when billed alone."""
    other = CustomerFactory(external_id="walleted", currency="USD")
    subscribe(client, "plain", "pro", OCT_1)
    subscribe(client, "credited", "pro", OCT_1, customer=other.external_id)
    close_periods()
    response = client.post(
        "/api/v1/wallets/",
        {"customer": "walleted", "currency": "USD", "granted_credits": "10.00"},
        format="json",
    )
    assert response.status_code == 201, response.json()

    report = billing_run()

    assert (report.generated, report.finalized, report.failed) == (2, 2, 0)
    credited = Invoice.objects.get(subscription__external_id="credited")
    plain = Invoice.objects.get(subscription__external_id="plain")
    assert credited.prepaid_credit_amount_cents == 1000
    assert plain.prepaid_credit_amount_cents == 0
    assert credited.payable_amount_cents == credited.total_amount_cents - 1000


@pytest.mark.django_db(transaction=True)
def test_two_workers_bill_disjoint_pages_with_no_gap_in_the_numbers(client, catalog):
    _subscriptions(client, 24)

    reports = race([lambda: billing_run(batch_size=3)] * 2)

    assert sum(r.generated for r in reports) == 24, reports
    assert all(r.failed == 0 for r in reports), reports
    assert _numbers() == _expected_numbers(24)
    assert Invoice.objects.values("subscription_id").distinct().count() == 24
    assert not SubscriptionPeriod.objects.filter(billed_at__isnull=True).exists()


def test_the_beat_run_starts_billing_run_workers_runs_on_one_queue(
    client, catalog, settings, monkeypatch
):
    from billing.invoicing import tasks

    _subscriptions(client, 4)
    settings.BILLING_RUN_WORKERS = 3
    started = []
    monkeypatch.setattr(tasks.billing_run_beside, "delay", lambda: started.append("beside"))

    report = tasks.billing_run()
    beside = [tasks.billing_run_beside() for _ in started]

    assert started == ["beside", "beside"]
    assert report["generated"] == 4
    assert [r["generated"] for r in beside] == [0, 0]  # nothing left: none billed twice
    assert _numbers() == _expected_numbers(4)


def test_a_page_queues_one_collection_per_invoice_owed(client, catalog, stripe_enabled):
    from billing.sync.models import OutboxMessage

    _subscriptions(client, 3)
    OutboxMessage.objects.all().delete()  # the customers' and subscriptions' syncs

    billing_run()

    invoices = Invoice.objects.all()
    assert invoices.count() == 3
    assert all(i.payment_status == "pending" and i.next_payment_attempt_at for i in invoices)
    assert all(i.payment_blocked_reason == "" for i in invoices)
    collect = OutboxMessage.objects.filter(action="invoice.collect", provider="stripe")
    assert sorted(collect.values_list("object_id", flat=True)) == sorted(
        str(i.pk) for i in invoices
    )
