"""Customers created through the API reach Stripe through a real broker and worker."""

import logging
import time

import pytest

from billing.sync import outbox
from billing.sync.models import OutboxMessage
from core.logging import RequestIdFilter
from customers.models import Customer
from tests.helpers.providers import stripe_get, wait_until

pytestmark = pytest.mark.e2e


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.addFilter(RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def processed_request_ids(self) -> set[str]:
        return {r.request_id for r in self.records if r.getMessage() == "outbox message processed"}


@pytest.fixture
def task_logs():
    """The outbox's log records, with the request id each was written under."""
    collect = Collect()
    task_logger = logging.getLogger("billing.sync.outbox")
    task_logger.addHandler(collect)
    task_logger.setLevel(logging.INFO)
    yield collect
    task_logger.removeHandler(collect)
    task_logger.setLevel(logging.NOTSET)


def test_customer_reaches_stripe_within_seconds_and_logs_share_the_request_id(
    client, stripe_enabled, worker, task_logs
):
    started = time.monotonic()
    response = client.post(
        "/api/v1/customers/",
        {"external_id": "e2e-1", "name": "E2E", "email": "e2e@example.com"},
        format="json",
        HTTP_X_REQUEST_ID="req-e2e-42",
    )
    assert response.status_code == 201
    assert response["X-Request-ID"] == "req-e2e-42"

    def synced():
        body = client.get("/api/v1/customers/e2e-1/").json()
        return body if body["sync"]["stripe"]["status"] == "synced" else None

    body = wait_until(synced)
    assert time.monotonic() - started < 10
    remote = stripe_get(stripe_enabled, f"customers/{body['stripe_customer_id']}")
    assert remote["email"] == "e2e@example.com"
    assert task_logs.processed_request_ids() == {"req-e2e-42"}


def test_broker_outage_delays_sync_but_loses_nothing(
    client, stripe_enabled, broker, worker, task_logs, settings
):
    settings.SWEEP_GRACE_SECONDS = 0  # the sweep below stands for one a minute later
    broker.stop()
    started = time.monotonic()
    for i in range(5):
        response = client.post(
            "/api/v1/customers/",
            {"external_id": f"outage-{i}"},
            format="json",
            HTTP_X_REQUEST_ID=f"outage-req-{i}",
        )
        assert response.status_code == 201, response.content
    # Publishing failed fast instead of hanging the requests.
    assert time.monotonic() - started < 15
    assert OutboxMessage.objects.filter(status="pending", provider="stripe").count() == 5

    broker.start()  # same port: the worker reconnects
    outbox.outbox_sweep()

    # The customer row gets its Stripe id a moment before the message is marked done.
    wait_until(lambda: not OutboxMessage.objects.exclude(status="done").exists(), timeout=40)
    assert Customer.objects.filter(stripe_customer_id__isnull=False).count() == 5
    ids = set(Customer.objects.values_list("stripe_customer_id", flat=True))
    listed = {c["id"] for c in stripe_get(stripe_enabled, "customers?limit=100")["data"]}
    assert ids <= listed
    # Re-published by the sweeper, each task still logs under the request that caused it.
    assert task_logs.processed_request_ids() == {f"outage-req-{i}" for i in range(5)}
