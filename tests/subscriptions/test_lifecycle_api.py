"""The subscription lifecycle through the API, its illegal moves, and time passing."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from subscriptions import services
from subscriptions.models import Subscription
from subscriptions.tasks import subscriptions_advance
from tests.factories import CustomerFactory
from tests.helpers.catalog import build_catalog
from tests.helpers.concurrency import race

pytestmark = pytest.mark.django_db
URL = "/api/v1/subscriptions/"


def create(client, **fields):
    body = {"external_id": "sub-1", "customer": "acme", "plan": "pro", **fields}
    return client.post(URL, body, format="json")


def act(client, action: str, **body):
    return client.post(f"{URL}sub-1/{action}/", body, format="json")


def refused(response, state: str) -> None:
    assert response.status_code == 409, response.json()
    error = response.json()["errors"][0]
    assert error["code"] == "invalid_transition" and state in error["detail"]


def test_the_whole_lifecycle_and_its_illegal_moves(client, catalog):
    created = create(client)
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["status"] == "active" and body["amount_cents"] == 4900
    now = timezone.now()
    assert body["current_period_start"] <= now.isoformat().replace("+00:00", "Z")
    assert body["current_period_end"].startswith(
        f"{(now.replace(day=28) + timedelta(days=4)).strftime('%Y-%m')}-01"
    )

    upgrade = client.patch(f"{URL}sub-1/", {"plan": "business"}, format="json").json()
    assert upgrade["plan"] == "business" and upgrade["next_plan"] is None
    assert upgrade["current_period_end"] == body["current_period_end"]  # same period, prorated

    downgrade = client.patch(f"{URL}sub-1/", {"plan": "starter"}, format="json").json()
    assert downgrade["plan"] == "business" and downgrade["next_plan"] == "starter"

    canceling = act(client, "cancel").json()
    assert canceling["status"] == "active" and canceling["cancel_at_period_end"] is True
    assert canceling["next_plan"] is None  # a cancellation replaces a scheduled downgrade
    refused(act(client, "cancel"), "canceling at period end")

    reactivated = act(client, "reactivate").json()
    assert reactivated["status"] == "active" and reactivated["cancel_at_period_end"] is False
    refused(act(client, "reactivate"), "active")

    terminated = act(client, "cancel", at_period_end=False).json()
    assert terminated["status"] == "terminated" and terminated["terminated_at"]
    refused(act(client, "cancel"), "terminated")
    refused(act(client, "cancel", at_period_end=False), "terminated")
    refused(client.patch(f"{URL}sub-1/", {"plan": "pro"}, format="json"), "terminated")

    restarted = act(client, "reactivate").json()
    assert restarted["status"] == "active" and restarted["terminated_at"] is None
    # It restarts in a new period counted from now; when it first started is history.
    assert restarted["started_at"] == body["started_at"]
    assert restarted["billing_anchor_at"] >= terminated["terminated_at"]
    phases = Subscription.objects.get(external_id="sub-1").phases.values_list(
        "reason", "plan__code"
    )
    assert list(phases) == [
        ("created", "pro"),
        ("upgrade", "business"),
        ("reactivated", "business"),
    ]


def test_future_start_is_pending_until_the_beat_job(client, catalog):
    start = timezone.now() + timedelta(days=3)
    body = create(client, start_at=start.isoformat()).json()
    assert body["status"] == "pending" and body["current_period_end"] is None
    assert subscriptions_advance() == {}
    sub = Subscription.objects.get()
    assert (
        services.subscription_advance(subscription=sub, now=start + timedelta(hours=1)) == "started"
    )
    sub.refresh_from_db()
    assert sub.status == "active" and sub.started_at == start


def test_period_end_applies_a_downgrade_exactly_once(client, catalog):
    create(client, plan="business")
    client.patch(f"{URL}sub-1/", {"plan": "starter"}, format="json")
    sub = Subscription.objects.get()
    end = sub.current_period_end
    assert (
        services.subscription_advance(subscription=sub, now=end - timedelta(seconds=1)) == "not due"
    )
    assert services.subscription_advance(subscription=sub, now=end) == "downgraded"
    assert services.subscription_advance(subscription=sub, now=end) == "not due"  # twice
    sub.refresh_from_db()
    assert sub.plan.code == "starter" and sub.next_plan is None
    assert sub.current_period_start == end
    assert list(sub.phases.values_list("reason", flat=True)) == ["created", "downgrade"]


def test_a_late_job_closes_every_missed_period_and_cancels_once(client, catalog):
    create(client)
    act(client, "cancel")
    sub = Subscription.objects.get()
    end = sub.current_period_end
    late = end + timedelta(days=70)
    assert services.subscription_advance(subscription=sub, now=late) == "canceled"
    assert services.subscription_advance(subscription=sub, now=late) == "not due"
    sub.refresh_from_db()
    assert sub.status == "canceled" and sub.ended_at == end
    assert act(client, "reactivate").json()["status"] == "active"


def test_late_job_without_changes_renews_to_the_current_period(client, catalog):
    with time_machine.travel(datetime(2026, 1, 31, 10, tzinfo=UTC), tick=False):
        create(client, billing_time="anniversary", start_at="2026-01-31T10:00:00Z")
    sub = Subscription.objects.get()
    services.subscription_advance(subscription=sub, now=datetime(2026, 3, 30, tzinfo=UTC))
    sub.refresh_from_db()
    assert (sub.current_period_start, sub.current_period_end) == (
        datetime(2026, 2, 28, tzinfo=UTC),
        datetime(2026, 3, 31, tzinfo=UTC),
    )


def test_cancel_a_pending_subscription(client, catalog):
    create(client, start_at=(timezone.now() + timedelta(days=5)).isoformat())
    assert act(client, "cancel").json()["status"] == "canceled"
    refused(act(client, "cancel"), "canceled")


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"plan": "nope"}, "does_not_exist"),
        ({"customer": "nobody"}, "does_not_exist"),
        ({"billing_time": "sometimes"}, "invalid_choice"),
        ({"overrides": {"amount_cents": -1}}, "invalid"),
        ({"overrides": {"charges": {"tokens": {"graduated_ranges": []}}}}, "invalid"),
    ],
)
def test_bad_subscription_input_is_400(client, catalog, fields, code):
    response = create(client, **fields)
    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["code"] == code
    assert not Subscription.objects.exists()


def test_currency_mismatch_and_duplicates_are_409(client, catalog):
    CustomerFactory(external_id="eu", currency="EUR")
    response = create(client, customer="eu")
    assert (
        response.status_code == 409 and response.json()["errors"][0]["code"] == "currency_mismatch"
    )
    create(client)
    again = create(client)
    assert again.status_code == 409 and again.json()["errors"][0]["code"] == "subscription_exists"


def test_list_filters(client, catalog):
    create(client)
    create(client, external_id="sub-2", plan="starter")
    act(client, "cancel", at_period_end=False)
    listed = lambda **q: [s["external_id"] for s in client.get(URL, q).json()["results"]]  # noqa: E731
    assert listed(status="terminated") == ["sub-1"]
    assert listed(plan="starter") == ["sub-2"]
    assert sorted(listed(customer="acme")) == ["sub-1", "sub-2"]
    assert client.get(URL, {"status": "weird"}).status_code == 400


def test_a_plan_in_use_is_frozen(client, catalog):
    create(client)
    response = client.patch("/api/v1/plans/pro/", {"amount_cents": 5900}, format="json")
    assert response.status_code == 409 and response.json()["errors"][0]["code"] == "plan_in_use"
    assert (
        client.patch("/api/v1/plans/pro/", {"name": "Pro (2026)"}, format="json").status_code == 200
    )
    metric = client.patch("/api/v1/billable_metrics/tokens/", {"aggregation": "max"}, format="json")
    assert metric.status_code == 409 and metric.json()["errors"][0]["code"] == "metric_in_use"
    assert (
        client.patch("/api/v1/plans/starter/", {"amount_cents": 2900}, format="json").status_code
        == 200
    )


@pytest.mark.parametrize(
    "properties",
    [
        {
            "graduated_ranges": [
                {"from_value": 1, "to_value": None, "per_unit_amount": "1", "flat_amount": "0"}
            ]
        },  # does not start at 0
        {
            "graduated_ranges": [
                {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"},
                {"from_value": 12, "to_value": None, "per_unit_amount": "1", "flat_amount": "0"},
            ]
        },
        {
            "graduated_ranges": [
                {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"}
            ]
        },
        {
            "graduated_ranges": [
                {"from_value": 0, "to_value": None, "per_unit_amount": 0.5, "flat_amount": "0"}
            ]
        },
    ],
)
def test_invalid_charge_properties_are_400(client, catalog, properties):
    response = client.post(
        "/api/v1/plans/",
        {
            "code": "bad",
            "name": "Bad",
            "interval": "monthly",
            "amount_cents": 0,
            "currency": "USD",
            "charges": [{"metric": "tokens", "model": "graduated", "properties": properties}],
        },
        format="json",
    )
    assert response.status_code == 400, response.json()


def test_metric_needs_a_field_unless_count(client):
    response = client.post(
        "/api/v1/billable_metrics/",
        {"code": "gb", "name": "GB", "aggregation": "sum"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "field_name"


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_cancel_and_reactivate_end_valid(api_key, catalog_tx):
    raw = api_key[1]

    def hit(index: int) -> int:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        action = ["cancel", "reactivate"][index % 2]
        body = {"at_period_end": index % 4 != 0} if action == "cancel" else {}
        return client.post(f"{URL}sub-1/{action}/", body, format="json").status_code

    results = race([lambda i=i: hit(i) for i in range(20)])
    assert set(results) <= {200, 409}
    sub = Subscription.objects.get()
    assert (sub.status, sub.cancel_at_period_end) in {
        ("active", False),
        ("active", True),
        ("terminated", False),
    }
    # The audit trail holds one event per successful transition, in a valid order.
    events = list(sub.events.order_by("pgh_id").values_list("status", "cancel_at_period_end"))
    assert len(events) == 2 + results.count(200)  # insert + activation + each success
    for (status, canceling), (next_status, next_canceling) in itertools.pairwise(events):
        assert (status, canceling, next_status, next_canceling) in VALID_STEPS


VALID_STEPS = {
    ("pending", False, "active", False),
    ("active", False, "active", True),
    ("active", True, "active", False),
    ("active", False, "terminated", False),
    ("active", True, "terminated", False),
    ("terminated", False, "active", False),
}


@pytest.fixture
def catalog_tx(api_key, transactional_db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    build_catalog()
    assert create(client).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_the_beat_job_runs_outside_any_request_transaction(api_key, catalog_tx):
    sub = Subscription.objects.get()
    Subscription.objects.filter(pk=sub.pk).update(
        current_period_end=timezone.now() - timedelta(seconds=1)
    )
    assert subscriptions_advance() == {"renewed": 1}
    assert subscriptions_advance() == {}


def test_a_downgrade_keeps_the_current_price_until_the_period_ends(client, catalog):
    create(client, plan="business", overrides={"amount_cents": 5000})
    response = client.patch(
        f"{URL}sub-1/", {"plan": "starter", "overrides": {"amount_cents": 1}}, format="json"
    ).json()
    # Cheaper than what is paid now (5000): scheduled, and the discount stays meanwhile.
    assert (response["plan"], response["amount_cents"], response["next_plan"]) == (
        "business",
        5000,
        "starter",
    )
    sub = Subscription.objects.get()
    services.subscription_advance(subscription=sub, now=sub.current_period_end)
    sub.refresh_from_db()
    assert (sub.plan.code, sub.amount_cents, sub.next_plan) == ("starter", 1, None)


def test_an_upgrade_is_judged_against_the_price_paid_now(client, catalog):
    create(client, plan="business", overrides={"amount_cents": 1000})
    # pro (4900) is above the discounted 1000 being paid: an upgrade, at once.
    response = client.patch(f"{URL}sub-1/", {"plan": "pro"}, format="json").json()
    assert (response["plan"], response["next_plan"]) == ("pro", None)


def test_an_overrides_change_opens_a_phase(client, catalog):
    create(client)
    client.patch(f"{URL}sub-1/", {"overrides": {"amount_cents": 100}}, format="json")
    phases = Subscription.objects.get().phases.order_by("started_at", "id")
    assert [(p.reason, p.overrides, p.ended_at is None) for p in phases] == [
        ("created", {}, False),
        ("overrides", {"amount_cents": 100}, True),
    ]


@pytest.mark.parametrize(
    "overrides",
    [{"charges": ["x"]}, {"charges": "abc"}, {"amount_cents": 10**30}, {"amount_cents": "5"}],
)
def test_malformed_overrides_are_400(client, catalog, overrides):
    assert create(client, overrides=overrides).status_code == 400


@pytest.mark.parametrize(("field", "value"), [("trial_days", 10**9), ("amount_cents", 10**20)])
def test_out_of_range_plan_numbers_are_400(client, catalog, field, value):
    body = {
        "code": "huge",
        "name": "Huge",
        "interval": "monthly",
        "amount_cents": 100,
        "currency": "USD",
        field: value,
    }
    assert client.post("/api/v1/plans/", body, format="json").status_code == 400


def test_listing_costs_the_same_queries_for_1_or_6_subscriptions(client, catalog):
    from django.test.utils import CaptureQueriesContext

    def queries_of_a_listing() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(URL)
        assert response.status_code == 200
        return len(captured.captured_queries)

    create(client)
    one = queries_of_a_listing()
    for i in range(5):
        create(client, external_id=f"more-{i}")
    assert queries_of_a_listing() == one > 0
