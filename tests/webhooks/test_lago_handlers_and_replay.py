"""Lago handlers, replay from the command line and the admin."""

import io
import random
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from tests.factories import CustomerFactory, WebhookEventFactory
from tests.helpers.signing import dumps, lago_hmac
from webhooks.models import WebhookEvent
from webhooks.services import webhook_event_process

pytestmark = pytest.mark.django_db


def lago_customer(lago_id: str, updated_at: str) -> dict:
    return {
        "webhook_type": "customer.updated",
        "object_type": "customer",
        "organization_id": str(uuid.uuid4()),
        "customer": {
            "lago_id": lago_id,
            "external_id": "acme",
            "name": "Acme",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": updated_at,
        },
    }


def lago_subscription(status: str, **times) -> dict:
    return {
        "webhook_type": f"subscription.{ {'active': 'started'}.get(status, status) }",
        "object_type": "subscription",
        "organization_id": str(uuid.uuid4()),
        "subscription": {
            "lago_id": "00000000-0000-0000-0000-0000000000a1",
            "external_id": "sub-1",
            "external_customer_id": "acme",
            "status": status,
            "plan_code": "pro",
            "created_at": "2026-01-01T00:00:00Z",
            **times,
        },
    }


def deliver(post_lago, payloads: list[dict]) -> list[WebhookEvent]:
    stored = []
    for payload in payloads:
        key = payload.setdefault("_key", str(uuid.uuid4()))
        body = dumps({k: v for k, v in payload.items() if k != "_key"})
        assert (
            post_lago({}, unique_key=key, body=body, signature=lago_hmac(body)).status_code == 200
        )
        event = WebhookEvent.objects.get(event_id=key)
        webhook_event_process(event_pk=event.pk)
        event.refresh_from_db()
        stored.append(event)
    return stored


def test_lago_customer_events_link_the_lago_id(post_lago):
    customer = CustomerFactory(external_id="acme")
    lago_id = str(uuid.uuid4())
    (event,) = deliver(post_lago, [lago_customer(lago_id, "2026-02-01T00:00:00Z")])
    customer.refresh_from_db()
    assert str(customer.lago_id) == lago_id
    assert event.status == "processed" and event.customer_id == customer.pk


def test_lago_subscription_states_never_go_back(post_lago):
    CustomerFactory(external_id="acme")
    sequence = [
        lago_subscription("active", started_at="2026-01-02T00:00:00Z"),
        lago_subscription(
            "canceled", started_at="2026-01-02T00:00:00Z", canceled_at="2026-02-01T00:00:00Z"
        ),
        lago_subscription(
            "terminated", started_at="2026-01-02T00:00:00Z", terminated_at="2026-03-01T00:00:00Z"
        ),
    ]
    rng = random.Random(7)
    sequence[0]["_key"] = str(uuid.uuid4())
    shuffled = [*sequence, dict(sequence[0])]  # Lago's retry: the same X-Lago-Unique-Key
    rng.shuffle(shuffled)
    events = deliver(post_lago, shuffled)
    applied = [e for e in events if "older" not in e.note]
    # Whatever the order, the last state applied is the terminated one.
    assert applied[-1].note == "subscription sub-1 is terminated"


def test_replay_command_reruns_failed_events(post_lago, settings):
    (event,) = deliver(post_lago, [lago_customer(str(uuid.uuid4()), "2026-02-01T00:00:00Z")])
    assert event.note == "no local customer with this external_id"
    WebhookEvent.objects.filter(pk=event.pk).update(status="failed", last_error="boom")
    CustomerFactory(external_id="acme")
    out = io.StringIO()
    call_command("replay_webhooks", "--failed", stdout=out)
    assert "Replayed 1 event(s): 1 processed." in out.getvalue()
    event.refresh_from_db()
    assert event.status == "processed" and event.customer is not None
    call_command("replay_webhooks", "--id", event.event_id, stdout=out)
    call_command("replay_webhooks", "--since", "2000-01-01T00:00:00Z", stdout=out)
    with pytest.raises(CommandError):
        call_command("replay_webhooks", stdout=out)


def test_admin_shows_the_payload_and_replays(admin_client):
    event = WebhookEventFactory(
        provider="lago",
        payload=lago_customer(str(uuid.uuid4()), "2026-02-01T00:00:00Z"),
        processed=True,
    )
    page = admin_client.get(f"/admin/webhooks/webhookevent/{event.pk}/change/")
    assert page.status_code == 200
    assert "&quot;webhook_type&quot;: &quot;customer.updated&quot;" in page.content.decode()
    assert admin_client.get("/admin/webhooks/webhookevent/?status__exact=failed").status_code == 200
    response = admin_client.post(
        "/admin/webhooks/webhookevent/",
        {"action": "replay", "_selected_action": [str(event.pk)]},
        follow=True,
    )
    assert "Replayed 1 event(s)" in response.content.decode()


def test_replay_leaves_an_event_a_live_worker_holds_until_that_worker_is_presumed_dead(
    admin_client, post_lago, settings
):
    (event,) = deliver(post_lago, [lago_customer(str(uuid.uuid4()), "2026-02-01T00:00:00Z")])
    WebhookEvent.objects.filter(pk=event.pk).update(status="processing", locked_at=timezone.now())
    response = admin_client.post(
        "/admin/webhooks/webhookevent/",
        {"action": "replay", "_selected_action": [str(event.pk)]},
        follow=True,
    )
    assert "not replayed: A worker is processing it right now." in response.content.decode()
    out = io.StringIO()
    call_command("replay_webhooks", "--id", event.event_id, stdout=out)
    assert "Replayed 1 event(s): 1 busy." in out.getvalue()

    # Past QUEUE_STALE_SECONDS (the setting of every queue, no longer the outbox's) the
    # worker is taken for dead and the replay goes ahead.
    settings.QUEUE_STALE_SECONDS = 400
    WebhookEvent.objects.filter(pk=event.pk).update(
        locked_at=timezone.now() - timedelta(seconds=401)
    )
    call_command("replay_webhooks", "--id", event.event_id, stdout=out)
    assert "Replayed 1 event(s): 1 processed." in out.getvalue()
    event.refresh_from_db()
    assert event.status == "processed" and event.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_an_admin_replay_fetches_outside_any_transaction(admin_client, monkeypatch):
    """A handler's fetch reads the provider under locks held until its apply commits: run
    inside the admin's own transaction, that apply would commit only after the locks are
    gone. The replay action runs each event with no transaction of its own."""
    from contextlib import contextmanager

    from django.db import connection

    from webhooks.handlers import lago as lago_handlers
    from webhooks.handlers.base import FetchThenApply, Outcome

    seen: list[bool] = []

    @contextmanager
    def fetch(payload):
        seen.append(connection.in_atomic_block)
        yield None

    handler = FetchThenApply(fetch=fetch, apply=lambda event, payload, fetched: Outcome())
    monkeypatch.setitem(lago_handlers.HANDLERS, "customer.updated", handler)
    event = WebhookEventFactory(
        provider="lago",
        payload=lago_customer(str(uuid.uuid4()), "2026-02-01T00:00:00Z"),
        processed=True,
    )

    response = admin_client.post(
        "/admin/webhooks/webhookevent/",
        {"action": "replay", "_selected_action": [str(event.pk)]},
        follow=True,
    )

    assert "Replayed 1 event(s)" in response.content.decode()
    assert seen == [False]
