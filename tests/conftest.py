"""Shared fixtures. Everything runs against the real PostgreSQL and Redis; providers are
emulators started on 127.0.0.1: localstripe for Stripe, tests/fakes/lago.py for Lago."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings
from rest_framework.test import APIClient

from core.models import ApiKey

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=0.5)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout}s")


@pytest.fixture(autouse=True)
def _publish_breaker_closed():
    """A test that stopped the broker must not leave later tests unable to publish."""
    from core import publish

    publish._paused_until = 0.0
    yield
    publish._paused_until = 0.0


@pytest.fixture(autouse=True)
def _flush_test_redis():
    """Each test starts with an empty cache and queue (the tests' own Redis database)."""
    from django_redis import get_redis_connection

    with contextlib.suppress(Exception):
        get_redis_connection("default").flushdb()


@pytest.fixture
def api_key(db) -> tuple[ApiKey, str]:
    return ApiKey.generate(name="test-service")


@pytest.fixture
def client(api_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    return client


@pytest.fixture
def read_only_client(db) -> APIClient:
    _, raw = ApiKey.generate(name="reporting", read_only=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient()


# --- Stripe: localstripe ---------------------------------------------------------------
@pytest.fixture(scope="session")
def localstripe_server(tmp_path_factory):
    port = free_port()
    state = tmp_path_factory.mktemp("localstripe") / "state.pickle"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.localstripe_server",
            "--port",
            str(port),
            "--state",
            str(state),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/v1/customers")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


STRIPE_TEST_KEY = "sk_test_" + "x" * 24


@pytest.fixture
def stripe_enabled(localstripe_server, settings):
    """Points the service at localstripe, as `make run` does."""
    settings.STRIPE_SECRET_KEY = STRIPE_TEST_KEY
    settings.STRIPE_TEST_SECRET_KEY = STRIPE_TEST_KEY
    settings.STRIPE_API_BASE = localstripe_server
    settings.STRIPE_ACCOUNT_ID = "acct_localstripe"
    return localstripe_server


def stripe_get(base: str, path: str) -> dict:
    response = requests.get(
        f"{base}/v1/{path}", headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}"}, timeout=5
    )
    response.raise_for_status()
    return response.json()


# --- Lago: the spec-validating fake ----------------------------------------------------
@pytest.fixture(scope="session")
def lago_server():
    spec = Path(os.environ.get("LAGO_OPENAPI_SPEC") or settings.LAGO_OPENAPI_SPEC)
    if not spec.is_file():
        pytest.skip(f"Lago's OpenAPI spec is not at {spec}: the fake Lago cannot validate")
    from tests.fakes.lago import FakeLago

    fake = FakeLago(spec)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def lago(lago_server, settings):
    """Points the service at the fake Lago; fails the test if any request broke the spec."""
    lago_server.reset()
    settings.LAGO_API_URL = lago_server.url
    settings.LAGO_API_KEY = lago_server.api_key
    settings.LAGO_TIMEOUT_SECONDS = 2.0
    yield lago_server
    assert lago_server.violations == [], lago_server.violations


def run_outbox() -> list[str]:
    """Process every due outbox message now, as a worker would."""
    from billing.sync.models import OutboxMessage
    from billing.sync.outbox import outbox_process

    due = OutboxMessage.objects.filter(status="pending").order_by("id").values_list("id", flat=True)
    return [outbox_process(message_id=pk) for pk in list(due)]


def drain_outbox(rounds: int = 5) -> None:
    """Run the outbox until nothing is pending, not waiting for backoff delays."""
    from django.utils import timezone

    from billing.sync.models import OutboxMessage

    for _ in range(rounds):
        pending = OutboxMessage.objects.filter(status="pending")
        if not pending.exists():
            break
        pending.update(available_at=timezone.now())
        run_outbox()
    if not OutboxMessage.objects.exclude(status__in=["done", "superseded"]).exists():
        return
    failed = list(
        OutboxMessage.objects.exclude(status__in=["done", "superseded"]).values(
            "action", "status", "last_error"
        )
    )
    raise AssertionError(f"outbox did not drain: {failed}")


def drain_usage_forwarding(rounds: int = 5) -> None:
    """Run usage forwarding until no run is pending, not waiting for backoff delays."""
    from django.utils import timezone

    from billing.usage.forwarding import usage_forwarding_process
    from billing.usage.models import UsageForwardingRun

    for _ in range(rounds):
        pending = UsageForwardingRun.objects.filter(status="pending")
        if not pending.exists():
            break
        pending.update(available_at=timezone.now())
        for pk in list(pending.values_list("id", flat=True)):
            usage_forwarding_process(run_id=pk)
    unfinished = list(
        UsageForwardingRun.objects.exclude(status__in=["done", "superseded"]).values(
            "status", "last_error"
        )
    )
    assert unfinished == [], f"usage forwarding did not drain: {unfinished}"


@pytest.fixture(autouse=True)
def _empty_unmanaged_tables(request, django_db_blocker):
    """Django's flush after a transactional test skips unmanaged tables (the partitioned
    usage table), so it is emptied here."""
    yield
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or (
        marker is not None and marker.kwargs.get("transaction")
    )
    if transactional:
        from django.db import connection

        # Runs after the database fixtures are torn down, so it unblocks access itself.
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("TRUNCATE billing_usagerecord")


# --- A catalog to subscribe to -------------------------------------------------------


@pytest.fixture
def catalog(client):
    build_catalog(client)


def build_catalog(client) -> None:
    """Two metrics, and plans of 49, 99 and 19 a month with a standard and a graduated
    charge, and a customer paying in USD."""
    assert (
        client.post(
            "/api/v1/billable_metrics/",
            {"code": "api_calls", "name": "API calls", "aggregation": "count"},
            format="json",
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/api/v1/billable_metrics/",
            {"code": "tokens", "name": "Tokens", "aggregation": "sum", "field_name": "tokens"},
            format="json",
        ).status_code
        == 201
    )
    charges = [
        {"metric": "api_calls", "model": "standard", "properties": {"amount": "0.002"}},
        {
            "metric": "tokens",
            "model": "graduated",
            "properties": {
                "graduated_ranges": [
                    {"from_value": 0, "to_value": 1000, "per_unit_amount": "0", "flat_amount": "0"},
                    {
                        "from_value": 1001,
                        "to_value": None,
                        "per_unit_amount": "0.0001",
                        "flat_amount": "1",
                    },
                ]
            },
        },
    ]
    for code, amount in (("pro", 4900), ("business", 9900), ("starter", 1900)):
        response = client.post(
            "/api/v1/plans/",
            {
                "code": code,
                "name": code.title(),
                "interval": "monthly",
                "amount_cents": amount,
                "currency": "USD",
                "charges": charges,
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
    assert (
        client.post(
            "/api/v1/customers/", {"external_id": "acme", "currency": "USD"}, format="json"
        ).status_code
        == 201
    )
