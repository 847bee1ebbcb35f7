"""Webhook intake and processing: stored first, processed once, replayable.

The view only verifies and stores (`webhook_event_receive`); a Celery task runs the
provider's handler (`webhook_event_process`). A redelivery hits the unique constraint and
changes nothing; a handler failure is retried with backoff (core.queue, WEBHOOK_* settings)
and ends `failed` for staff.
"""

import hashlib
import json
import logging
from contextlib import nullcontext
from typing import Any

import pghistory
from django.db import IntegrityError, transaction

from core.context import get_request_id
from core.queue import RetryQueue
from webhooks.handlers import lago as lago_handlers
from webhooks.handlers import stripe as stripe_handlers
from webhooks.handlers.base import apply_of, fetch_of
from webhooks.models import WebhookEvent

logger = logging.getLogger(__name__)
# Published by name: the task module imports this one, not the other way round.
PROCESS_TASK = "webhooks.tasks.webhook_process"

PROVIDERS = {"stripe": stripe_handlers, "lago": lago_handlers}
# Headers worth keeping for staff; signatures are not (they prove nothing later).
KEPT_HEADERS = ("Content-Type", "User-Agent", "X-Lago-Signature-Algorithm", "X-Lago-Unique-Key")

WEBHOOKS = RetryQueue(
    name="webhooks",
    model=WebhookEvent,
    task=PROCESS_TASK,
    settings_prefix="WEBHOOK",
    waiting=WebhookEvent.Status.RECEIVED,
    running=WebhookEvent.Status.PROCESSING,
    done=WebhookEvent.Status.PROCESSED,
    failed=WebhookEvent.Status.FAILED,
    # Replaying is processing again from the stored body, whatever became of it before.
    retry_from=[
        WebhookEvent.Status.RECEIVED,
        WebhookEvent.Status.PROCESSED,
        WebhookEvent.Status.FAILED,
        WebhookEvent.Status.IGNORED,
    ],
)


def webhook_event_receive(
    *,
    provider: str,
    event_id: str,
    event_type: str,
    body: str,
    payload: dict[str, Any],
    headers: Any,
) -> tuple[WebhookEvent | None, bool]:
    """Store a verified event. Returns (event, created); a duplicate returns (None, False)."""
    object_id, provider_created_at = PROVIDERS[provider].describe(payload)
    event = WebhookEvent(
        provider=provider,
        event_id=event_id[:255],
        type=event_type[:128],
        body=body,
        body_sha256=hashlib.sha256(body.encode()).hexdigest(),
        headers={name: headers[name] for name in KEPT_HEADERS if name in headers},
        object_id=object_id,
        provider_created_at=provider_created_at,
        request_id=get_request_id() or "",
    )
    # The receiver runs outside a transaction, where the INSERT commits alone: one round
    # trip, where BEGIN, INSERT, COMMIT were three. Inside a caller's transaction a
    # savepoint keeps a duplicate from breaking it.
    in_transaction = transaction.get_connection().in_atomic_block
    try:
        with transaction.atomic() if in_transaction else nullcontext():
            event.save(force_insert=True)
    except IntegrityError:
        return None, False
    # At once when the row is committed already, else when the caller's transaction is.
    transaction.on_commit(lambda: webhook_publish(event_pk=event.pk))
    return event, True


def webhook_publish(*, event_pk, countdown: float = 0, force: bool = False) -> bool:
    """Hand the event to Celery; if the broker is down the sweeper publishes it later."""
    return WEBHOOKS.publish(event_pk, countdown=countdown, force=force)


class ClaimLost(Exception):
    """The sweep took the event back from this worker (it ran past QUEUE_STALE_SECONDS):
    its effects are rolled back rather than recorded beside another worker's."""


def webhook_event_process(*, event_pk) -> str:
    """Run the handler of one event if it is due and nobody else runs it. Safe to repeat."""
    event = WEBHOOKS.claim(event_pk)
    if event is None:
        return "skipped"
    log = {
        "webhook_event": str(event.pk),
        "provider": event.provider,
        "type": event.type,
        "attempt": event.attempts,
    }
    handler = PROVIDERS[event.provider].HANDLERS.get(event.type)
    if handler is None:
        WEBHOOKS.complete(
            event, status=WebhookEvent.Status.IGNORED, note="no handler for this type"
        )
        return "ignored"
    payload = json.loads(event.body)
    try:
        # The provider is read first, outside any transaction; then one transaction applies
        # the event and records its outcome: both happen, or neither.
        with (
            fetch_of(handler, payload) as fetched,
            transaction.atomic(),
            pghistory.context(webhook_event=str(event.pk)),
        ):
            outcome = apply_of(handler, event, payload, fetched)
            fields: dict[str, Any] = {"note": outcome.note[:255]}
            if outcome.customer_id is not None:
                fields["customer_id"] = outcome.customer_id
            if outcome.related is not None:
                fields["related"] = outcome.related
            if not WEBHOOKS.complete(event, status=WebhookEvent.Status.PROCESSED, **fields):
                raise ClaimLost
    except ClaimLost:
        return "lost"
    except Exception as exc:
        attempt = WEBHOOKS.failed_attempt(event, exc)
        if attempt.outcome == "retrying":
            logger.warning(
                "webhook handler failed; retrying", extra={**log, "error": attempt.error}
            )
        else:
            logger.error("webhook handler failed for good", extra={**log, "error": attempt.error})
        return attempt.outcome
    logger.info("webhook processed", extra=log)
    return "processed"


def webhook_event_replay(*, event: WebhookEvent) -> str:
    """Run processing again from the stored body, now, from the first attempt. Refused
    (Conflict) while a live worker is on it. Returns what processing did."""
    WEBHOOKS.retry(event, publish=False, note="")
    return webhook_event_process(event_pk=event.pk)


def webhook_sweep(*, limit: int = 1000) -> int:
    """Publish events whose task was lost (broker outage) and free those of dead workers."""
    return WEBHOOKS.sweep(limit=limit)
