"""Shared fixtures. Everything runs against the real PostgreSQL and Redis; providers are
emulators started on 127.0.0.1: localstripe for Stripe, tests/fakes/lago.py for Lago.

Fixtures only: the functions and constants tests share live in tests/helpers/ and the
model factories in tests/factories.py (see tests/README.md)."""

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from core.models import ApiKey

# Helpers assert like tests do: rewrite their asserts too, for readable failures.
pytest.register_assert_rewrite("tests.helpers")

from tests.helpers.catalog import build_catalog  # noqa: E402
from tests.helpers.providers import STRIPE_TEST_KEY, free_port, wait_for_http  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


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


@pytest.fixture
def stripe_enabled(localstripe_server, settings):
    """Points the service at localstripe, as `make run` does."""
    settings.STRIPE_SECRET_KEY = STRIPE_TEST_KEY
    settings.STRIPE_TEST_SECRET_KEY = STRIPE_TEST_KEY
    settings.STRIPE_API_BASE = localstripe_server
    settings.STRIPE_ACCOUNT_ID = "acct_localstripe"
    return localstripe_server


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
def catalog(db):
    """Two metrics, three plans and the customer "acme": see build_catalog."""
    return build_catalog()
