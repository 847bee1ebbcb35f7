"""The outbox brings customers to Stripe (localstripe) and Lago (the spec-checked fake)."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from djstripe.models import Customer as StripeMirror
from prometheus_client.parser import text_string_to_metric_families

from billing.sync import outbox
from billing.sync.models import OutboxMessage
from customers import services
from customers.models import Customer
from tests.factories import CustomerFactory
from tests.helpers.providers import stripe_get

pytestmark = pytest.mark.django_db


def make_customer(**fields) -> Customer:
    defaults = {
        "external_id": "acme",
        "name": "Acme",
        "email": "billing@acme.test",
        "currency": "USD",
        "country": "US",
        "city": "Springfield",
        "tax_id": "US-1",
    }
    return CustomerFactory(**{**defaults, **fields})


def message_for(customer: Customer, provider: str) -> OutboxMessage:
    return OutboxMessage.objects.filter(object_id=str(customer.pk), provider=provider).latest("id")


def run(message: OutboxMessage) -> str:
    return outbox.outbox_process(message_id=message.pk)


def make_due(message: OutboxMessage) -> None:
    OutboxMessage.objects.filter(pk=message.pk).update(available_at=timezone.now())


def stripe_customers_for(base: str, customer: Customer) -> list[dict]:
    listing = stripe_get(base, "customers?limit=100")["data"]
    return [c for c in listing if c.get("metadata", {}).get("customer_id") == str(customer.pk)]


def test_customer_reaches_stripe_once_however_often_the_task_runs(stripe_enabled):
    customer = make_customer()
    message = message_for(customer, "stripe")
    assert message.status == "pending"
    assert run(message) == "done"
    assert run(message) == "skipped"  # a second delivery of the same task

    # A later save queues a new message; running it updates, never creates.
    customer = services.customer_update(customer=customer, name="Acme Inc")
    assert run(message_for(customer, "stripe")) == "done"

    customer.refresh_from_db()
    remote = stripe_customers_for(stripe_enabled, customer)
    assert len(remote) == 1
    assert remote[0]["id"] == customer.stripe_customer_id
    assert remote[0]["name"] == "Acme Inc"
    assert remote[0]["email"] == "billing@acme.test"
    assert remote[0]["metadata"]["external_id"] == "acme"
    # Mirrored without its personal data (README, "Personal data").
    mirror = StripeMirror.objects.get(id=customer.stripe_customer_id)
    assert mirror.stripe_data["metadata"]["external_id"] == "acme"
    assert "name" not in mirror.stripe_data and not mirror.email


def test_repeated_saves_before_the_worker_runs_coalesce(stripe_enabled):
    with transaction.atomic():
        customer = make_customer()
        for name in ("A", "B", "C"):
            customer = services.customer_update(customer=customer, name=name)
    pending = OutboxMessage.objects.filter(object_id=str(customer.pk), status="pending")
    assert pending.count() == 1


def test_customer_reaches_lago_and_lago_id_is_kept(lago):
    customer = make_customer()
    assert run(message_for(customer, "lago")) == "done"
    customer.refresh_from_db()
    remote = lago.customers["acme"]
    assert str(customer.lago_id) == remote["lago_id"]
    assert remote["tax_identification_number"] == "US-1"
    assert remote["currency"] == "USD"

    services.customer_update(customer=customer, city="Shelbyville")
    assert run(message_for(customer, "lago")) == "done"
    assert lago.customers["acme"]["city"] == "Shelbyville"
    assert len(lago.customers) == 1


def test_lago_5xx_is_retried_with_backoff_then_succeeds(lago):
    customer = make_customer()
    message = message_for(customer, "lago")
    lago.fail_next(1, status=500)
    assert run(message) == "retrying"
    message.refresh_from_db()
    assert message.status == "pending" and message.attempts == 1
    assert "500" in message.last_error
    assert message.available_at > timezone.now()
    assert run(message) == "skipped"  # not due yet
    make_due(message)
    assert run(message) == "done"
    message.refresh_from_db()
    assert message.status == "done" and message.attempts == 2 and message.last_error == ""


def test_lago_429_waits_at_least_retry_after(lago, settings):
    settings.OUTBOX_BACKOFF_BASE_SECONDS = 0.01
    customer = make_customer()
    message = message_for(customer, "lago")
    lago.rate_limit_next(1, retry_after=30)
    before = timezone.now()
    assert run(message) == "retrying"
    message.refresh_from_db()
    assert message.available_at >= before + timedelta(seconds=30)


def test_lago_timeout_is_retried(lago, settings):
    settings.LAGO_TIMEOUT_SECONDS = 0.3
    customer = make_customer()
    message = message_for(customer, "lago")
    lago.delay_next(1, seconds=1.0)
    assert run(message) == "retrying"
    message.refresh_from_db()
    assert "timeout" in message.last_error
    make_due(message)
    assert run(message) == "done"
    assert len(lago.customers) == 1


def test_refusal_fails_at_once_and_staff_can_retry(lago, settings):
    customer = make_customer()
    message = message_for(customer, "lago")
    settings.LAGO_API_KEY = "wrong-key"
    assert run(message) == "failed"
    message.refresh_from_db()
    assert message.status == "failed" and "401" in message.last_error

    settings.LAGO_API_KEY = lago.api_key
    outbox.outbox_retry(message=message)
    message.refresh_from_db()
    assert message.status == "pending" and message.attempts == 0
    assert run(message) == "done"


def test_attempts_are_bounded(lago, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    customer = make_customer()
    message = message_for(customer, "lago")
    lago.fail_next(5, status=503)
    assert run(message) == "retrying"
    make_due(message)
    assert run(message) == "failed"


def test_sync_block_reports_each_provider(client, lago, stripe_enabled):
    response = client.post("/api/v1/customers/", {"external_id": "acme"}, format="json")
    assert response.json()["sync"] == {
        "lago": {"status": "pending", "error": None},
        "stripe": {"status": "pending", "error": None},
    }
    customer = Customer.objects.get()
    lago.fail_next(1, status=400)
    run(message_for(customer, "lago"))
    run(message_for(customer, "stripe"))
    sync = client.get("/api/v1/customers/acme/").json()["sync"]
    assert sync["stripe"] == {"status": "synced", "error": None}
    assert sync["lago"]["status"] == "failed" and "400" in sync["lago"]["error"]


def test_sweeper_frees_rows_of_dead_workers(lago, settings):
    customer = make_customer()
    message = message_for(customer, "lago")
    OutboxMessage.objects.filter(pk=message.pk).update(
        status="processing", locked_at=timezone.now() - timedelta(hours=1)
    )
    outbox.outbox_sweep()
    message.refresh_from_db()
    assert message.status == "pending"
    assert run(message) == "done"


def test_a_newer_pending_message_supersedes_a_retrying_one(lago):
    customer = make_customer()
    first = message_for(customer, "lago")
    # A worker is on the first message when the customer changes again...
    OutboxMessage.objects.filter(pk=first.pk).update(status="processing")
    services.customer_update(customer=customer, name="Newer")
    newer = message_for(customer, "lago")
    assert newer.pk != first.pk
    # ...and the first attempt fails: it cannot go back to pending beside the newer one.
    first.refresh_from_db()
    assert outbox.OUTBOX.retry_later(first, error="boom", delay=5).outcome == "superseded"
    first.refresh_from_db()
    assert first.status == "superseded"
    assert run(newer) == "done"
    assert lago.customers["acme"]["name"] == "Newer"


def test_a_failed_update_after_create_never_makes_a_second_stripe_customer(
    stripe_enabled, monkeypatch
):
    from billing.providers import stripe as stripe_provider
    from billing.providers.base import ProviderUnavailable

    customer = make_customer()
    message = message_for(customer, "stripe")
    real_update = stripe_provider.customer_update

    def failing_once(**kwargs):
        monkeypatch.setattr(stripe_provider, "customer_update", real_update)
        raise ProviderUnavailable("stripe", "timeout", code="timeout")

    monkeypatch.setattr(stripe_provider, "customer_update", failing_once)
    assert run(message) == "retrying"
    customer.refresh_from_db()
    assert customer.stripe_customer_id  # kept although the attempt failed
    make_due(message)
    assert run(message) == "done"
    assert len(stripe_customers_for(stripe_enabled, customer)) == 1


def test_cleared_fields_are_cleared_at_stripe(stripe_enabled):
    customer = make_customer()
    run(message_for(customer, "stripe"))
    customer = services.customer_update(customer=customer, email="", city="", name="")
    run(message_for(customer, "stripe"))
    customer.refresh_from_db()
    (remote,) = stripe_customers_for(stripe_enabled, customer)
    assert not remote["email"] and not remote["name"]
    assert not (remote.get("address") or {}).get("city")


def test_one_worker_per_object_at_a_time(lago):
    import threading

    from django.db import connection as main_connection

    customer = make_customer()
    message = message_for(customer, "lago")
    key = f"outbox:lago:customer.sync:customers.customer:{customer.pk}"
    held, release = threading.Event(), threading.Event()

    def other_worker():
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
            held.set()
            release.wait(60)
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])
        connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    # A loaded machine may take seconds to open the other worker's connection: wait for
    # its lock for real, rather than racing it.
    assert held.wait(60), "the other worker never took the lock"
    try:
        assert run(message) == "busy"
    finally:
        release.set()
        thread.join()
    message.refresh_from_db()
    assert message.status == "pending" and message.attempts == 0
    assert not lago.customers
    make_due(message)
    assert main_connection.connection is not None
    assert run(message) == "done"


def test_a_message_that_kills_its_worker_ends_failed(lago, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    customer = make_customer()
    message = message_for(customer, "lago")
    for _ in range(2):  # claimed, then the worker dies (no _finish)
        outbox.OUTBOX.claim(message.pk)
        OutboxMessage.objects.filter(pk=message.pk).update(
            locked_at=timezone.now() - timedelta(hours=1)
        )
        outbox.outbox_sweep()
    message.refresh_from_db()
    assert message.status == "failed" and message.attempts == 2
    assert "worker died" in message.last_error


def test_sweeper_leaves_fresh_rows_alone_and_republishes_rarely(lago, settings):
    settings.SWEEP_GRACE_SECONDS = 60
    customer = make_customer()
    message = message_for(customer, "lago")
    assert outbox.outbox_sweep() == 0  # its task was published a moment ago
    OutboxMessage.objects.filter(pk=message.pk).update(
        available_at=timezone.now() - timedelta(minutes=2)
    )
    assert outbox.outbox_sweep() == 1
    assert outbox.outbox_sweep() == 0  # published just now: not again for a while


def metric_values(anonymous_client) -> dict[tuple[str, tuple], float]:
    """The samples of GET /metrics: {(name, sorted labels): value}."""
    text = anonymous_client.get("/metrics").content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_sync_that_never_completes_shows_in_the_admin_and_in_metrics(
    lago, admin_client, anonymous_client
):
    stuck = message_for(make_customer(), "lago")
    lago.fail_next(3, status=503)
    for _ in range(3):
        make_due(stuck)
        assert run(stuck) == "retrying"
    OutboxMessage.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(hours=2))
    just_queued = message_for(make_customer(external_id="fresh"), "lago")

    listing = admin_client.get("/admin/sync/outboxmessage/?unfinished_for=1h").content.decode()
    assert f"/admin/sync/outboxmessage/{stuck.pk}/change/" in listing
    assert f"/admin/sync/outboxmessage/{just_queued.pk}/change/" not in listing
    assert "2 h 0 min" in listing  # how long it has been unfinished

    values = metric_values(anonymous_client)
    assert values[("outbox_messages_retrying", (("provider", "lago"),))] == 1
    assert values[("outbox_messages_retrying", (("provider", "stripe"),))] == 0
    assert values[("outbox_messages", (("provider", "lago"), ("status", "pending")))] == 2
    assert values[("outbox_oldest_pending_age_seconds", (("provider", "lago"),))] >= 7200
    assert values[("queue_rows_retrying", (("queue", "outbox"),))] == 1
    assert values[("queue_rows", (("queue", "outbox"), ("state", "waiting")))] == 2
    assert values[("queue_oldest_waiting_age_seconds", (("queue", "outbox"),))] >= 7200
    # The other queues are exported too, at zero when idle.
    assert values[("queue_rows", (("queue", "webhooks"), ("state", "failed")))] == 0
    assert values[("queue_rows", (("queue", "usage_forwarding"), ("state", "waiting")))] == 0


def test_staff_retry_in_the_admin_queues_failed_messages_and_says_which_it_could_not(
    lago, admin_client, settings
):
    failed = message_for(make_customer(), "lago")
    settings.LAGO_API_KEY = "wrong-key"
    assert run(failed) == "failed"
    settings.LAGO_API_KEY = lago.api_key
    done = message_for(make_customer(external_id="other"), "lago")
    assert run(done) == "done"

    response = admin_client.post(
        "/admin/sync/outboxmessage/",
        {"action": "retry", "_selected_action": [str(failed.pk), str(done.pk)]},
        follow=True,
    )
    page = response.content.decode()
    assert f"1 outbox message(s) queued again: #{failed.pk}." in page
    assert f"#{done.pk}: not queued again: It is done" in page
    failed.refresh_from_db()
    assert failed.status == "pending" and failed.attempts == 0
    assert run(failed) == "done"
