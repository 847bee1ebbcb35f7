"""Usage events to Lago: `POST /events/batch`, at most 100 at a time, all or nothing."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from billing.providers.base import ProviderError, ProviderUnavailable, UsageEventData
from billing.providers.lago.client import request

BATCH_LIMIT = 100  # Lago's documented maximum per /events/batch


@dataclass(frozen=True)
class BatchOutcome:
    """What Lago did with one batch. A batch is all or nothing: if any event was refused,
    Lago stored none of them, and the ones it did not refuse must be sent again."""

    # Indexes of events Lago already holds (`value_already_exist`): sent before, done.
    already_held: frozenset[int] = frozenset()
    # Indexes of events Lago refused for another reason, with Lago's words.
    refused: dict[int, str] = field(default_factory=dict)

    @property
    def stored(self) -> bool:
        return not self.already_held and not self.refused


ALREADY_HELD = "value_already_exist"


def events_batch(*, events: Sequence[UsageEventData]) -> BatchOutcome:
    """Send up to 100 events; what Lago made of them.

    A 422 whose details name no event of the batch is not an answer about these events:
    it is raised as ProviderUnavailable (retried later), never read as "all stored"."""
    try:
        request("POST", "events/batch", body={"events": [_event(event) for event in events]})
    except ProviderError as exc:
        details = exc.details
        if exc.http_status != 422 or not isinstance(details, dict):
            raise
        by_index = {
            int(key): str(value)
            for key, value in details.items()
            if str(key).isdigit() and int(key) < len(events)
        }
        if not by_index:
            raise ProviderUnavailable(
                "lago", f"unexpected batch errors: {str(details)[:200]}"
            ) from exc
        return BatchOutcome(
            already_held=frozenset(i for i, error in by_index.items() if ALREADY_HELD in error),
            refused={i: error for i, error in by_index.items() if ALREADY_HELD not in error},
        )
    return BatchOutcome()


def _event(event: UsageEventData) -> dict[str, Any]:
    body: dict[str, Any] = {
        "transaction_id": event.transaction_id,
        "external_subscription_id": event.external_subscription_id,
        "code": event.code,
        # Unix seconds with milliseconds, as a string: Lago reads it with Float().
        "timestamp": f"{event.timestamp.astimezone(UTC).timestamp():.3f}",
        "properties": event.properties,
    }
    if event.precise_total_amount_cents is not None:
        body["precise_total_amount_cents"] = event.precise_total_amount_cents
    return body
