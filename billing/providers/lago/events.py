"""Usage events to Lago: `POST /events/batch`, at most 100 at a time, all or nothing."""

from typing import Any

from billing.providers.base import ProviderError
from billing.providers.lago.client import request

BATCH_LIMIT = 100  # Lago's documented maximum per /events/batch


def events_batch(*, events: list[dict[str, Any]]) -> dict[str, dict]:
    """Send up to 100 events. Returns {} when Lago stored them all, else Lago's per-index
    errors (then Lago stored none: a batch is all or nothing)."""
    try:
        request("POST", "events/batch", body={"events": events})
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
