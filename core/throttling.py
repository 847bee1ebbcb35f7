"""Per API key rate limits: one counter per key and window in the cache (Redis).

A calling service that loops on the API must not starve the others: past its rate, a key is
answered 429 (in the API's one error shape) with `Retry-After`. The window is fixed (one
counter per key and window, incremented atomically by Redis), so a key can get up to twice
its rate across a window boundary: the point is a ceiling, not exact pacing, and it costs
one round trip per request rather than DRF's list of timestamps read and rewritten.

Only requests carrying an API key are counted: webhooks and health checks have none.
"""

import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from core.models import ApiKey

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """ "100/second", "6000/minute" (the unit's first letter counts) → (requests, seconds);
    None when empty or "off"."""
    if not rate or rate.strip().lower() in ("off", "none"):
        return None
    count, _, period = rate.partition("/")
    seconds = PERIODS.get(period.strip()[:1].lower())
    if seconds is None or int(count) < 1:
        raise ValueError(f"API_THROTTLE_RATE: expected e.g. '100/second', got {rate!r}")
    return int(count), seconds


class ApiKeyRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request, view) -> bool:
        # Read on each request, so that a test (or a settings override) changes it at once.
        rate = parse_rate(settings.API_THROTTLE_RATE)
        if rate is None or not isinstance(request.auth, ApiKey):
            return True
        limit, period = rate
        now = time.time()
        window = int(now // period)
        key = f"throttle:apikey:{request.auth.pk}:{period}:{window}"
        try:
            count = _count(key, period + 1)
        except Exception:
            # The cache is an optimisation: an outage lets requests through, never fails them.
            logger.warning("API throttle unavailable (cache error)", exc_info=True)
            return True
        if count is None or count <= limit:  # None: the cache ignored an error
            return True
        self.retry_after = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        # DRF turns this into the Retry-After header (rounded up to whole seconds).
        return math.ceil(self.retry_after) if self.retry_after is not None else None


def _count(key: str, timeout: int) -> int | None:
    """This request's number in its window. On Redis, one round trip: INCR, and an expiry
    set only by the window's first request (EXPIRE NX)."""
    get_client = getattr(getattr(cache, "client", None), "get_client", None)
    if get_client is None:  # not django-redis: add() starts the counter, incr() is atomic
        cache.add(key, 0, timeout=timeout)
        return cache.incr(key)
    pipe = get_client(write=True).pipeline(transaction=False)
    pipe.incr(cache.make_key(key))
    pipe.expire(cache.make_key(key), timeout, nx=True)
    count, _ = pipe.execute()
    return int(count)
