"""Usage events to Lago: `POST /events/batch`, at most 100 at a time, all or nothing."""

from collections.abc import Sequence
from datetime import UTC
from typing import Any

from billing.providers.base import ProviderError, UsageEventData
from billing.providers.lago.client import request

BATCH_LIMIT = 100  # Lago's documented maximum per /events/batch


def events_batch(*, events: Sequence[UsageEventData | dict[str, Any]]) -> dict[str, dict]:
    """Send up to 100 events. Returns {} when Lago stored them all, else Lago's per-index
    errors (then Lago stored none: a batch is all or nothing).

    Events already in Lago's shape (dicts) are sent as they are, until the usage forwarder
    builds UsageEventData instead."""
    payload = [event if isinstance(event, dict) else _event(event) for event in events]
    try:
        request("POST", "events/batch", body={"events": payload})
    except ProviderError as exc:
        details = getattr(exc, "details", None)
        if (
            exc.http_status == 422
            and isinstance(details, dict)
            and all(key.isdigit() for key in details)
        ):
            return details
        raise
    return {}


def _event(event: UsageEventData) -> dict[str, Any]:
    return {
        "transaction_id": event.transaction_id,
        "external_subscription_id": event.external_subscription_id,
        "code": event.code,
        # Unix seconds with milliseconds, as a string: Lago reads it with Float().
        "timestamp": f"{event.timestamp.astimezone(UTC).timestamp():.3f}",
        "properties": event.properties,
    }
