"""With Lago as the engine, every usage event reaches Lago exactly once, through
timeouts, 5xx answers and Lago's all-or-nothing batches."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from billing.sync.models import OutboxMessage
from billing.usage import forwarding
from billing.usage.forwarding import usage_forwarding_process
from billing.usage.models import UsageForwardingRun, UsageRecord
from core.locks import advisory_lock
from tests.factories import SubscriptionFactory
from tests.helpers.outbox import drain_outbox
from tests.helpers.usage import drain_usage_forwarding

pytestmark = pytest.mark.django_db


@pytest.fixture
def engine(lago, settings, catalog):
    settings.BILLING_ENGINE = "lago"
    SubscriptionFactory(external_id="sub-1", customer=catalog.acme, plan=catalog.pro)
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
    drain_usage_forwarding()
    assert len(engine.events) == 250
    assert max(batches(engine)) <= 100
    assert not UsageRecord.objects.exclude(lago_status="sent").exists()


def test_through_5xx_and_timeouts_nothing_is_lost_or_doubled(client, engine, settings):
    settings.LAGO_TIMEOUT_SECONDS = 0.3
    send(client, 150)
    engine.fail_next(1, status=502, path_prefix="/events")
    engine.delay_next(1, seconds=1.0, path_prefix="/events")  # Lago stores it, we time out
    drain_usage_forwarding(rounds=10)
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
    drain_usage_forwarding()
    assert len(engine.events) == 30
    assert not UsageRecord.objects.exclude(lago_status="sent").exists()


def test_the_local_engine_forwards_nothing(client, lago, catalog):
    SubscriptionFactory(external_id="sub-1", customer=catalog.acme, plan=catalog.pro)
    drain_outbox()
    send(client, 3)
    drain_usage_forwarding()
    assert engine_events(lago) == 0
    assert not UsageForwardingRun.objects.exists()
    assert set(UsageRecord.objects.values_list("lago_status", flat=True)) == {"disabled"}


def engine_events(lago) -> int:
    return len(lago.events)


# --- the forwarding runs (core.queue over UsageForwardingRun) -------------------------


def process_pending() -> list[str]:
    return [
        usage_forwarding_process(run_id=pk)
        for pk in UsageForwardingRun.objects.filter(status="pending").values_list("id", flat=True)
    ]


def make_due() -> None:
    UsageForwardingRun.objects.filter(status="pending").update(available_at=timezone.now())


def test_one_pending_run_stands_for_many_recordings_and_the_outbox_is_not_used(client, engine):
    for prefix in ("a", "b", "c"):
        send(client, 5, prefix=prefix)
    assert UsageForwardingRun.objects.get().status == "pending"
    assert not OutboxMessage.objects.filter(action="usage.forward").exists()
    assert process_pending() == ["done"]
    assert len(engine.events) == 15


def test_a_lago_outage_keeps_the_run_retrying_rather_than_failed(client, engine):
    send(client, 10)
    engine.fail_next(3, status=503, path_prefix="/events")
    for _ in range(3):
        make_due()
        assert process_pending() == ["retrying"]
    run = UsageForwardingRun.objects.get()
    assert run.status == "pending" and run.attempts == 3 and "503" in run.last_error
    assert run.available_at > timezone.now()
    assert UsageRecord.objects.filter(lago_status="pending").count() == 10
    drain_usage_forwarding()
    assert len(engine.events) == 10
    assert UsageForwardingRun.objects.get().attempts == 4


def test_a_refused_run_fails_and_staff_retry_it_in_the_admin(
    client, engine, admin_client, settings
):
    send(client, 4)
    settings.LAGO_API_KEY = "wrong-key"
    assert process_pending() == ["failed"]
    run = UsageForwardingRun.objects.get()
    assert run.status == "failed" and "401" in run.last_error
    listing = admin_client.get("/admin/usage/usageforwardingrun/?status__exact=failed")
    assert "401" in listing.content.decode()

    settings.LAGO_API_KEY = engine.api_key
    response = admin_client.post(
        "/admin/usage/usageforwardingrun/",
        {"action": "retry", "_selected_action": [str(run.pk)]},
        follow=True,
    )
    assert f"1 usage forwarding run(s) queued again: #{run.pk}." in response.content.decode()
    run.refresh_from_db()
    assert run.status == "pending" and run.attempts == 0 and run.last_error == ""
    drain_usage_forwarding()
    assert len(engine.events) == 4


def test_one_run_sends_at_a_time(client, engine):
    send(client, 3)
    held, release = threading.Event(), threading.Event()

    def other_run():
        with advisory_lock(forwarding.LOCK):
            held.set()
            release.wait(60)
        connection.close()

    thread = threading.Thread(target=other_run)
    thread.start()
    assert held.wait(60), "the other run never took the lock"
    try:
        assert process_pending() == ["busy"]
    finally:
        release.set()
        thread.join()
    run = UsageForwardingRun.objects.get()
    assert run.status == "pending" and run.attempts == 0  # not a failure: no attempt spent
    assert not engine.events
    drain_usage_forwarding()
    assert len(engine.events) == 3


def test_a_long_backlog_is_handed_from_run_to_run(client, engine, monkeypatch):
    monkeypatch.setattr(forwarding, "BATCHES_PER_RUN", 1)
    send(client, 250)
    assert process_pending() == ["done"]
    assert UsageForwardingRun.objects.filter(status="pending").count() == 1  # the next one
    drain_usage_forwarding()
    assert len(engine.events) == 250
    assert UsageForwardingRun.objects.filter(status="done").count() == 4  # 100+100+50+none


def test_the_sweep_publishes_a_run_whose_task_was_lost(client, engine, settings):
    settings.SWEEP_GRACE_SECONDS = 60
    send(client, 1)
    assert forwarding.usage_forwarding_sweep() == 0  # its task was published a moment ago
    UsageForwardingRun.objects.update(available_at=timezone.now() - timedelta(minutes=2))
    assert forwarding.usage_forwarding_sweep() == 1


def test_an_event_amount_reaches_lago(client, lago, settings, catalog):
    """An event's own amount (for a dynamic charge) goes to Lago in its
    precise_total_amount_cents field (EventInputObject), as a decimal string."""
    settings.BILLING_ENGINE = "lago"
    SubscriptionFactory(external_id="sub-1", customer=catalog.acme, plan=catalog.pro)
    drain_outbox()
    event = {
        "transaction_id": "amount-1",
        "subscription": "sub-1",
        "metric": "tokens",
        "properties": {"tokens": 3},
        "precise_total_amount_cents": "1234.5600",
    }
    assert client.post("/api/v1/usage/", event, format="json").status_code == 201
    drain_usage_forwarding()
    assert lago.violations == []
    assert lago.events["amount-1"]["precise_total_amount_cents"] == "1234.56"
