"""Provider calls made while an HTTP request waits use a short timeout and no retries.

The worker's long timeouts and SDK retries suit Celery tasks; inside a request they add up
beyond gunicorn's 30 s (Stripe: 10 s x 3 attempts + backoff). So every provider call made
during a request (payment methods, invoice previews, ...) runs with
STRIPE_REQUEST_TIMEOUT_SECONDS / LAGO_REQUEST_TIMEOUT_SECONDS and no retries, and a hung
provider answers 503 in seconds.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_inline: ContextVar[bool] = ContextVar("provider_calls_inline", default=False)


def is_inline() -> bool:
    """True while the caller is an HTTP request (short timeouts, no retries)."""
    return _inline.get()


@contextmanager
def inline_calls() -> Iterator[None]:
    token = _inline.set(True)
    try:
        yield
    finally:
        _inline.reset(token)


class InlineProviderCallsMiddleware:
    """Marks everything the request does as inline (see the module's docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with inline_calls():
            return self.get_response(request)
