"""With Lago as the engine, every usage event reaches Lago exactly once, through
timeouts, 5xx answers and Lago's all-or-nothing batches."""

import time

import pytest

from billing.usage.models import UsageRecord
from tests.conftest import drain_outbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def engine(lago, settings, client, catalog):
    settings.BILLING_ENGINE = "lago"
    response = client.post(
        "/api/v1/subscriptions/",
        {"external_id": "sub-1", "customer": "acme", "plan": "pro"},
        format="json",
    )
    assert response.status_code == 201
    drain_outbox()
    return lago


def send(client, count: int, prefix: str = "e") -> None:
    events = [
        {
            "transaction_id": f"{prefix}-{i}",
            "subscription": "sub-1",
            "metric": "tokens",
            "properties": {"tokens": i},
        }
        for i in range(count)
    ]
    response = client.post("/api/v1/usage/batch/", {"events": events}, format="json")
    assert {r["status"] for r in response.json()["results"]} == {"created"}


def batches(lago) -> list[int]:
    return [
        len(r["json"]["events"])
        for r in lago.requests
        if r["path"].endswith("/events/batch") and r["json"]
    ]


def test_events_go_in_batches_of_at_most_100_and_each_once(client, engine):
    send(client, 250)
    drain_outbox()
    assert len(engine.events) == 250
    assert max(batches(engine)) <= 100
    assert not UsageRecord.objects.exclude(lago_status="sent").exists()


def test_through_5xx_and_timeouts_nothing_is_lost_or_doubled(client, engine, settings):
    settings.LAGO_TIMEOUT_SECONDS = 0.3
    send(client, 150)
    engine.fail_next(1, status=502, path_prefix="/events")
    engine.delay_next(1, seconds=1.0, path_prefix="/events")  # Lago stores it, we time out
    drain_outbox(rounds=10)
    time.sleep(1.2)  # the slow answer lands after our timeout: let it, then count
    assert sorted(engine.events) == sorted(f"e-{i}" for i in range(150))
    assert not UsageRecord.objects.exclude(lago_status="sent").exists()


def test_events_lago_already_holds_do_not_block_the_rest(client, engine):
    send(client, 30)
    # As if an earlier attempt had reached Lago but its answer was lost.
    for transaction_id in ("e-3", "e-17"):
        record = UsageRecord.objects.get(transaction_id=transaction_id)
        engine._events[transaction_id] = {
            "transaction_id": transaction_id,
            "external_subscription_id": "sub-1",
            "code": "tokens",
            "properties": record.properties,
        }
    drain_outbox()
    assert len(engine.events) == 30
    assert not UsageRecord.objects.exclude(lago_status="sent").exists()


def test_the_local_engine_forwards_nothing(client, lago, catalog):
    client.post(
        "/api/v1/subscriptions/",
        {"external_id": "sub-1", "customer": "acme", "plan": "pro"},
        format="json",
    )
    drain_outbox()
    send(client, 3)
    drain_outbox()
    assert engine_events(lago) == 0
    assert set(UsageRecord.objects.values_list("lago_status", flat=True)) == {"disabled"}


def engine_events(lago) -> int:
    return len(lago.events)
