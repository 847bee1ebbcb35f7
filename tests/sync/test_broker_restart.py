"""The broker restarts under a running worker and beat (issue 12): the same processes
reconnect, and customers created before, during and after the outage all reach Stripe.

A real `celery -A config worker` (prefork, as `make run` and the image run it) and `beat`
are started as processes of their own against a broker of the test's own, which the test
stops and starts again at the same address. Slow-ish (about 20 s): it waits for real
reconnects and sweeps.
"""

import shutil
import time

import pytest
from django.db import connection

from billing.sync import outbox
from billing.sync.models import OutboxMessage
from customers.models import Customer
from tests.helpers.broker import (
    PrivateRabbitMQ,
    PrivateRedis,
    celery_process,
    publishing_to,
    stop_process,
    tail,
)
from tests.helpers.providers import STRIPE_TEST_KEY, stripe_get, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The brokers the test runs against, by kind (README "Choosing a broker").
BROKERS = {"redis": PrivateRedis, "rabbitmq": PrivateRabbitMQ}
# How long the broker stays down: a restart, not a long outage.
OUTAGE_SECONDS = 3
# Everything created before, during and after the outage is synced within this long of the
# broker's return (production, with its 60 s sweep grace, takes up to about two minutes).
SYNC_WITHIN_SECONDS = 40


@pytest.fixture(params=sorted(BROKERS))
def restartable_broker(request, settings):
    kind = BROKERS[request.param]
    if not kind.available():
        pytest.skip(f"no {request.param} broker can be started here")
    broker = kind()
    broker.start()
    settings.CELERY_BROKER_URL = broker.url
    try:
        with publishing_to(broker.url):
            yield broker
    finally:
        broker.stop()
        if getattr(broker, "base", None) is not None:  # a RabbitMQ node's data directory
            shutil.rmtree(broker.base, ignore_errors=True)


@pytest.fixture
def celery_stack(restartable_broker, stripe_enabled, transactional_db, tmp_path):
    """A worker and beat on the test database, the broker and localstripe; stopped (with
    their pool children) however the test ends. Yields {name: (process, log path)}."""
    env = {
        "TEST_DATABASE_NAME": connection.settings_dict["NAME"],
        "TEST_CELERY_BROKER_URL": restartable_broker.url,
        "STRIPE_SECRET_KEY": STRIPE_TEST_KEY,
        "STRIPE_API_BASE": stripe_enabled,
        "STRIPE_ACCOUNT_ID": "acct_localstripe",
        # Production's numbers, shortened so the sweeps the test waits for come in seconds.
        "QUEUE_SWEEP_SECONDS": "1",
        "SWEEP_GRACE_SECONDS": "0",
        "SWEEP_REPUBLISH_SECONDS": "2",
        "PUBLISH_PAUSE_SECONDS": "1",
    }
    commands = {
        "worker": ["worker", "--pool", "prefork", "--concurrency", "1", "--loglevel", "INFO"],
        "beat": ["beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat-schedule")],
    }
    stack = {}
    try:
        for name, args in commands.items():
            log = tmp_path / f"{name}.log"
            stack[name] = (celery_process(args, env=env, log=log), log)
        yield stack
    finally:
        for process, _ in stack.values():
            stop_process(process)


def _still_running(stack) -> None:
    for name, (process, log) in stack.items():
        assert process.poll() is None, (
            f"the {name} exited ({process.returncode}) after the broker restart:\n{tail(log)}"
        )


def _create(client, external_id: str) -> None:
    response = client.post("/api/v1/customers/", {"external_id": external_id}, format="json")
    assert response.status_code == 201, response.content


def _synced(stack, external_ids: set[str]) -> bool:
    _still_running(stack)  # fail at once, not at the timeout, when a process died
    customers = Customer.objects.filter(external_id__in=external_ids)
    return customers.filter(stripe_customer_id__isnull=False).count() == len(external_ids) and (
        not OutboxMessage.objects.exclude(status=OutboxMessage.Status.DONE).exists()
    )


def test_worker_and_beat_survive_a_broker_restart_and_sync_everything(
    client, restartable_broker, celery_stack, stripe_enabled
):
    # The worker is up and consuming: a customer created now reaches Stripe.
    _create(client, "before")
    wait_until(lambda: _synced(celery_stack, {"before"}), timeout=SYNC_WITHIN_SECONDS)

    # A retry the worker holds (the outbox publishes retries with a countdown): a message
    # the worker has taken and not acknowledged when the broker goes away. This is what
    # made the old worker exit with "Unrecoverable error: AttributeError('NoneType' object
    # has no attribute 'hostname')".
    held = OutboxMessage.objects.get()
    assert outbox.OUTBOX.publish(held.pk, countdown=600)
    wait_until(lambda: restartable_broker.unacked() == 1, timeout=10)

    restartable_broker.stop()
    during = {f"during-{i}" for i in range(3)}
    for external_id in sorted(during):
        _create(client, external_id)  # the publish fails; the rows wait for the sweeper
    time.sleep(OUTAGE_SECONDS)
    restartable_broker.start()  # the same address, empty: every queued message is gone

    _create(client, "after")
    wanted = {"before", "after", *during}
    wait_until(lambda: _synced(celery_stack, wanted), timeout=SYNC_WITHIN_SECONDS)

    _still_running(celery_stack)
    ids = set(Customer.objects.values_list("stripe_customer_id", flat=True))
    listed = {c["id"] for c in stripe_get(stripe_enabled, "customers?limit=100")["data"]}
    assert len(ids) == len(wanted)
    assert ids <= listed
