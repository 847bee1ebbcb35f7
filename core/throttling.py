"""Per API key rate limits: one counter per key and window in the cache (Redis).

A calling service that loops on the API must not starve the others: past its rate, a key is
answered 429 (in the API's one error shape) with `Retry-After`. The window is fixed (one
counter per key and window, incremented atomically by Redis), so a key can get up to twice
its rate across a window boundary: the point is a ceiling, not exact pacing.

A process adds its requests to the shared counter in lots (`_Lot`): with a rate of
thousands a window, asking Redis on every request was a tenth of a usage event's time.
A lot is a hundredth of the rate (at most 32 requests, one when the rate is under 200),
and is sent within LOT_SECONDS in any case; so with N processes a key can pass its rate
by at most N lots before every process sees the total, and a small rate is counted
exactly.

Only requests carrying an API key are counted: webhooks and health checks have none.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass

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
            count = _counted(key, period + 1, lot=max(1, min(MAX_LOT, limit // 100)))
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


MAX_LOT = 32
LOT_SECONDS = 0.25


@dataclass
class _Lot:
    """This process's view of one key's window: the total Redis last answered, and the
    requests counted here since."""

    key: str
    total: int = 0
    pending: int = 0
    sent_at: float = 0.0


_lots: dict[str, _Lot] = {}
_lots_lock = threading.Lock()


def _counted(key: str, timeout: int, *, lot: int) -> int | None:
    """This request's number in its window, as far as this process knows: the shared
    total plus what it has not sent yet; the lot is sent when full or LOT_SECONDS old."""
    now = time.monotonic()
    with _lots_lock:
        state = _lots.get(key)
        if state is None:
            if len(_lots) > 10_000:  # windows of keys gone quiet
                _lots.clear()
            state = _lots[key] = _Lot(key, sent_at=now)
        state.pending += 1
        if state.pending < lot and now - state.sent_at < LOT_SECONDS:
            return state.total + state.pending
        pending, state.pending, state.sent_at = state.pending, 0, now
    total = _count(key, timeout, pending)
    with _lots_lock:
        if total is not None:
            state.total = max(state.total, total)
        return (total or 0) + state.pending


def _count(key: str, timeout: int, amount: int = 1) -> int | None:
    """Add `amount` requests to the window's shared counter; its new total. On Redis, one
    round trip: INCRBY, and an expiry set only by the window's first lot (EXPIRE NX)."""
    get_client = getattr(getattr(cache, "client", None), "get_client", None)
    if get_client is None:  # not django-redis: add() starts the counter, incr() is atomic
        cache.add(key, 0, timeout=timeout)
        return cache.incr(key, amount)
    pipe = get_client(write=True).pipeline(transaction=False)
    pipe.incrby(cache.make_key(key), amount)
    pipe.expire(cache.make_key(key), timeout, nx=True)
    count, _ = pipe.execute()
    return int(count)
