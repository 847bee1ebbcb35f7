"""RecordUsage: each event counted once, however often and however concurrently sent."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from billing.usage.models import UsageRecord, UsageTransaction
from tests.factories import SubscriptionFactory
from tests.helpers.catalog import build_catalog
from tests.helpers.concurrency import race

pytestmark = pytest.mark.django_db
URL = "/api/v1/usage/"


@pytest.fixture
def subscribed(catalog):
    return SubscriptionFactory(external_id="sub-1", customer=catalog.acme, plan=catalog.pro)


def event(tid="t-1", **fields):
    return {
        "transaction_id": tid,
        "subscription": "sub-1",
        "metric": "tokens",
        "properties": {"tokens": 1200},
        **fields,
    }


def test_new_then_identical_then_conflicting(client, subscribed):
    created = client.post(URL, event(), format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["transaction_id"] == "t-1"
    again = client.post(URL, event(), format="json")
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]
    other = client.post(URL, event(properties={"tokens": 5}), format="json")
    assert other.status_code == 409
    assert other.json()["errors"][0]["code"] == "transaction_id_conflict"
    assert UsageRecord.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"metric": "nope"}, "unknown_metric"),
        ({"subscription": "nope"}, "unknown_subscription"),
        ({"properties": {}}, "missing_property"),
        ({"properties": {"tokens": "lots"}}, "property_not_numeric"),
        ({"properties": {"tokens": True}}, "property_not_numeric"),
        ({"timestamp": (timezone.now() + timedelta(hours=1)).isoformat()}, "timestamp_in_future"),
        ({"timestamp": "2000-01-01T00:00:00Z"}, "timestamp_before_subscription"),
    ],
)
def test_unusable_events_are_422_at_once(client, subscribed, fields, code):
    response = client.post(URL, event(**fields), format="json")
    assert response.status_code == 422, response.json()
    assert response.json()["errors"][0]["code"] == code
    assert not UsageRecord.objects.exists() and not UsageTransaction.objects.exists()


def test_a_terminated_subscription_is_not_billable(client, subscribed):
    client.post("/api/v1/subscriptions/sub-1/cancel/", {"at_period_end": False}, format="json")
    response = client.post(URL, event(), format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "subscription_not_billable"


def test_count_metrics_need_no_property(client, subscribed):
    response = client.post(URL, event(metric="api_calls", properties={}), format="json")
    assert response.status_code == 201


def test_batch_gives_each_event_its_own_result(client, subscribed):
    client.post(URL, event("dup"), format="json")
    events = [
        event("b-1"),
        event("dup"),  # sent before, same content
        event("dup", properties={"tokens": 9}),  # sent before, other content
        event("b-2", metric="nope"),
        {"transaction_id": "b-3"},  # malformed
        event("b-4"),
        event("b-4"),  # twice in one batch
    ]
    response = client.post(f"{URL}batch/", {"events": events}, format="json")
    assert response.status_code == 200, response.json()
    statuses = [(r["transaction_id"], r["status"]) for r in response.json()["results"]]
    assert statuses == [
        ("b-1", "created"),
        ("dup", "duplicate"),
        ("dup", "conflict"),
        ("b-2", "invalid"),
        ("b-3", "invalid"),
        ("b-4", "created"),
        ("b-4", "duplicate"),
    ]
    assert set(UsageRecord.objects.values_list("transaction_id", flat=True)) == {
        "dup",
        "b-1",
        "b-4",
    }


def test_batches_are_bounded(client, subscribed):
    events = [event(f"t-{i}") for i in range(1001)]
    assert client.post(f"{URL}batch/", {"events": events}, format="json").status_code == 400


def test_records_read_back_per_subscription_and_period(client, subscribed):
    for i in range(5):
        client.post(URL, event(f"r-{i}", metric="api_calls", properties={}), format="json")
    page = client.get(URL, {"subscription": "sub-1", "page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    assert client.get(URL, {"subscription": "sub-1", "metric": "tokens"}).json()["results"] == []
    future = (timezone.now() + timedelta(days=1)).isoformat()
    assert client.get(URL, {"subscription": "sub-1", "from": future}).json()["results"] == []
    assert client.get(URL).status_code == 400  # a subscription is required


def test_records_land_in_monthly_partitions():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'billing_usagerecord'::regclass"
        )
        assert cursor.fetchone()[0] >= 16  # 12 months back, 3 ahead, and a default


@pytest.mark.django_db(transaction=True)
def test_ten_racing_clients_store_an_event_once(api_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    catalog = build_catalog()
    SubscriptionFactory(external_id="sub-1", customer=catalog.acme, plan=catalog.pro)

    def send(tid, properties) -> int:
        racer = APIClient()
        racer.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
        return racer.post(URL, event(tid, properties=properties), format="json").status_code

    statuses = race([lambda: send("race", {"tokens": 7})] * 10)
    assert sorted(statuses) == [200] * 9 + [201]
    assert UsageRecord.objects.filter(transaction_id="race").count() == 1

    statuses = race([lambda i=i: send("race-2", {"tokens": i}) for i in range(10, 20)])
    # A new id raced with ten different contents: one is stored, nine conflict.
    assert sorted(statuses) == [201] + [409] * 9
    assert UsageRecord.objects.filter(transaction_id="race-2").count() == 1


def test_nul_characters_are_bad_input_not_a_crash(client, subscribed):
    response = client.post(URL, event(properties={"tokens": 1, "note": "a\u0000b"}), format="json")
    assert response.status_code == 400
    customer = client.post(
        "/api/v1/customers/", {"external_id": "nul", "metadata": {"k": "\u0000"}}, format="json"
    )
    assert customer.status_code == 400


def test_partitions_are_kept_ahead():
    from billing.usage.tasks import usage_partitions_ensure

    months = usage_partitions_ensure()
    assert len(months) == 4
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT to_regclass(%s)",
            [f"billing_usagerecord_y{months[-1][:4]}m{months[-1][5:7]}"],
        )
        assert cursor.fetchone()[0] is not None
