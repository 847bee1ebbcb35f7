"""Per API key throttling: past its rate a key is answered 429 in the one error shape,
with Retry-After; other keys, webhooks and health checks are not counted."""

import pytest
from rest_framework.test import APIClient

from core.models import ApiKey
from core.throttling import parse_rate

pytestmark = pytest.mark.django_db

URL = "/api/v1/customers/"


def test_a_key_past_its_rate_gets_429_with_retry_after(client, settings):
    settings.API_THROTTLE_RATE = "3/minute"

    answers = [client.get(URL) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert 1 <= int(refused["Retry-After"]) <= 60
    body = refused.json()
    assert body["type"] == "client_error"
    assert body["errors"][0]["code"] == "throttled"

    # Another key has its own count.
    _, raw = ApiKey.generate(name="other-service")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert other.get(URL).status_code == 200

    # Neither health checks nor webhooks are counted per key.
    for _ in range(5):
        assert client.get("/health/live/").status_code == 200


def test_the_default_rate_leaves_the_suite_and_the_benchmarks_alone(client, settings):
    assert parse_rate(settings.API_THROTTLE_RATE) == (60000, 60)
    assert parse_rate("off") is None and parse_rate("100/second") == (100, 1)
    settings.API_THROTTLE_RATE = "off"
    assert all(client.get(URL).status_code == 200 for _ in range(3))
    with pytest.raises(ValueError):
        parse_rate("10/fortnight")


def test_the_window_expires_with_its_period(client, settings):
    from django.core.cache import cache

    settings.API_THROTTLE_RATE = "5/minute"
    client.get(URL)

    redis = cache.client.get_client(write=True)
    (key,) = redis.keys("*throttle:apikey:*")
    assert int(redis.get(key)) == 1
    assert 0 < redis.ttl(key) <= 61


def test_a_high_rate_is_counted_in_lots_and_still_stops_at_its_ceiling(
    client, settings, monkeypatch
):
    from core import throttling

    settings.API_THROTTLE_RATE = "400/minute"  # lots of 4
    monkeypatch.setattr(throttling, "LOT_SECONDS", 3600)  # only full lots are sent here
    sent = []
    real = throttling._count
    monkeypatch.setattr(
        throttling,
        "_count",
        lambda key, timeout, amount=1: sent.append(amount) or real(key, timeout, amount),
    )

    answers = [client.get(URL).status_code for _ in range(12)]

    assert answers == [200] * 12
    assert sent == [4, 4, 4]  # three round trips for twelve requests

    # Another process has used up the key's rate: this one learns it at its next lot.
    from django.core.cache import cache

    (key,) = cache.client.get_client(write=True).keys("*throttle:apikey:*")
    cache.client.get_client(write=True).incrby(key, 400)
    answers = [client.get(URL).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
