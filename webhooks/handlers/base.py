"""What a handler is: an `apply` run in one transaction with no network call, and, where
it needs the provider's current state, a `fetch` run before it, outside any transaction.

`fetch(payload)` is a context manager: it reads the provider (taking any lock that must
keep the read and the write together) and yields what `apply` needs; it is left only after
`apply`'s transaction has committed. A plain function `(event, payload) -> Outcome` is an
apply with nothing to fetch.
"""

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from webhooks.models import WebhookEvent


@dataclass
class Outcome:
    """What a handler did: `applied` False means the event was deliberately not applied."""

    applied: bool = True
    note: str = ""
    customer_id: Any = None
    related: list[dict[str, str]] = field(default_factory=list)


Apply = Callable[[WebhookEvent, dict[str, Any]], Outcome]


@dataclass(frozen=True)
class FetchThenApply:
    fetch: Callable[[dict[str, Any]], AbstractContextManager[Any]]
    apply: Callable[[WebhookEvent, dict[str, Any], Any], Outcome]


Handler = Apply | FetchThenApply


def fetch_of(handler: Handler, payload: dict[str, Any]) -> AbstractContextManager[Any]:
    if isinstance(handler, FetchThenApply):
        return handler.fetch(payload)
    return nullcontext()


def apply_of(handler: Handler, event: WebhookEvent, payload: dict[str, Any], fetched: Any):
    if isinstance(handler, FetchThenApply):
        return handler.apply(event, payload, fetched)
    return handler(event, payload)
