"""A process keeps an API key it has read for API_KEY_CACHE_SECONDS (core/auth.py): the
next requests do not query it, a change made in this process is seen at once, and one
made elsewhere within that many seconds."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from core import auth
from core.models import ApiKey

pytestmark = pytest.mark.django_db
URL = "/api/v1/customers/"


@pytest.fixture(autouse=True)
def clean_cache():
    auth.forget_api_keys()
    yield
    auth.forget_api_keys()


@pytest.fixture
def key_and_client():
    key, raw = ApiKey.generate(name="cached-service")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return key, client


def key_reads(client) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        status = client.get(URL).status_code
    return status, sum('FROM "core_apikey"' in q["sql"] for q in queries.captured_queries)


def test_a_key_is_read_once_then_kept(key_and_client):
    _, client = key_and_client

    assert key_reads(client) == (200, 1)
    assert key_reads(client) == (200, 0)


def test_a_key_revoked_in_this_process_is_refused_at_once(key_and_client):
    key, client = key_and_client
    assert key_reads(client) == (200, 1)

    key.revoked_at = timezone.now()
    key.save()

    assert client.get(URL).status_code == 401


def test_a_key_revoked_elsewhere_is_refused_once_the_cache_expires(
    key_and_client, settings, monkeypatch
):
    settings.API_KEY_CACHE_SECONDS = 10
    key, client = key_and_client
    clock = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    assert client.get(URL).status_code == 200

    # Another process revokes it: no signal reaches this one.
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())

    clock[0] += 9
    assert client.get(URL).status_code == 200
    clock[0] += 2
    assert client.get(URL).status_code == 401


def test_the_admins_revoke_forgets_the_key(key_and_client, admin_client):
    key, client = key_and_client
    assert client.get(URL).status_code == 200

    response = admin_client.post(
        "/admin/core/apikey/",
        {"action": "revoke", "_selected_action": [str(key.pk)]},
        follow=True,
    )

    # Staff are told the other web processes take up to API_KEY_CACHE_SECONDS to see it.
    assert "Every web process refuses them within 10 seconds" in response.content.decode()
    assert client.get(URL).status_code == 401


def test_zero_reads_the_key_on_every_request(key_and_client, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    _, client = key_and_client

    assert key_reads(client) == (200, 1)
    assert key_reads(client) == (200, 1)


def test_an_unknown_key_is_never_kept(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer bk_unknown")

    assert client.get(URL).status_code == 401
    assert auth._keys == {}


def test_a_key_another_process_touched_asks_redis_once_a_minute(key_and_client, monkeypatch):
    key, client = key_and_client
    auth.cache.set(f"apikey-touch:{key.pk}", 1, timeout=60)  # another process's touch
    asked = []
    real_add = auth.cache.add
    monkeypatch.setattr(auth.cache, "add", lambda *a, **k: asked.append(a) or real_add(*a, **k))

    for _ in range(5):
        assert client.get(URL).status_code == 200

    assert len(asked) == 1
