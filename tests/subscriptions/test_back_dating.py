"""A back-dated subscription bills its past periods only when asked to, and within bounds
(hardening: money safeguards, item 1)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.invoicing.billing_run import billing_run
from billing.invoicing.models import Invoice
from subscriptions.models import Subscription, SubscriptionPeriod
from subscriptions.periods import add_months
from tests.factories import PlanFactory
from tests.helpers.invoicing import generate

pytestmark = pytest.mark.django_db
URL = "/api/v1/subscriptions/"


def create(client, start_at: str, **fields):
    body = {"external_id": "sub-1", "customer": "acme", "plan": "pro", "start_at": start_at}
    return client.post(URL, {**body, **fields}, format="json")


def refused(response, code: str) -> None:
    assert response.status_code == 422, response.json()
    error = response.json()["errors"][0]
    assert (error["code"], error["attr"]) == (code, "start_at")
    assert not Subscription.objects.exists()


def month_start(months_back: int):
    first = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return add_months(first, -months_back)


def test_a_start_years_back_is_refused_without_the_flag(client, catalog):
    refused(create(client, "2020-01-01T00:00:00Z"), "start_at_in_past")
    refused(create(client, month_start(2).isoformat()), "start_at_in_past")


def test_a_start_in_the_previous_period_needs_no_flag(client, catalog):
    response = create(client, (month_start(1) + timedelta(days=3)).isoformat())
    assert response.status_code == 201, response.json()
    assert "bill_past_periods" not in response.json()


def test_with_the_flag_the_past_is_one_catch_up_invoice(client, catalog):
    response = create(client, month_start(3).isoformat(), bill_past_periods=True)
    assert response.status_code == 201, response.json()
    assert response.json()["current_period_start"].startswith(month_start(0).date().isoformat())
    period = SubscriptionPeriod.objects.get()
    assert (period.start, period.end, period.periods) == (month_start(3), month_start(0), 3)
    assert period.reason == "catch_up"

    report = billing_run()
    assert billing_run().generated == 0  # idempotent: the row is billed
    invoice = Invoice.objects.get()
    assert invoice.total_amount_cents == 3 * 4900  # three months of Pro, no usage
    assert invoice.status == "finalized" and invoice.number
    assert (report.generated, report.failed) == (1, 0)
    status, _ = generate(client, "sub-1")
    assert status == 200  # that period's invoice exists
    assert Invoice.objects.count() == 1


def test_with_the_flag_the_past_is_billed_within_the_bound(client, catalog, settings):
    settings.SUBSCRIPTION_MAX_PAST_PERIODS = 3
    refused(create(client, month_start(4).isoformat(), bill_past_periods=True), "start_at_in_past")
    response = create(client, month_start(3).isoformat(), bill_past_periods=True)
    assert response.status_code == 201, response.json()
    assert Subscription.objects.get().started_at == month_start(3)


@pytest.mark.parametrize(
    "start_at", ["0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z", "9999-12-31T00:00:00Z"]
)
def test_start_at_is_bounded_even_with_the_flag(client, catalog, start_at):
    refused(create(client, start_at, bill_past_periods=True), "start_at_out_of_range")


def test_a_weekly_plan_from_2000_is_refused_even_with_the_flag(client, catalog):
    PlanFactory(code="weekly", interval="weekly", currency="USD")
    response = create(client, "2000-01-01T00:00:00Z", plan="weekly", bill_past_periods=True)
    refused(response, "start_at_in_past")


def test_a_start_five_years_ahead_is_refused(client, catalog):
    ahead = (timezone.now() + timedelta(days=6 * 366)).isoformat()
    refused(create(client, ahead), "start_at_out_of_range")
    soon = (timezone.now() + timedelta(days=30)).isoformat()
    assert create(client, soon).json()["status"] == "pending"
