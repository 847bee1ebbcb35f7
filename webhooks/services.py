"""Webhook intake and processing: stored first, processed once, replayable.

The view only verifies and stores (`webhook_event_receive`); a Celery task runs the
provider's handler (`webhook_event_process`). A redelivery hits the unique constraint and
changes nothing; a handler failure is retried with backoff and ends `failed` for staff.
"""

import hashlib
import json
import logging
from datetime import timedelta
from typing import Any

import pghistory
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from billing.providers.base import ProviderError
from core.context import get_request_id
from core.publish import publish_task, republish_waiting
from core.retry import backoff_seconds
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
    try:
        with transaction.atomic():
            event.save(force_insert=True)
            transaction.on_commit(lambda: webhook_publish(event_pk=event.pk))
    except IntegrityError:
        return None, False
    return event, True


def webhook_publish(*, event_pk, countdown: float = 0, force: bool = False) -> bool:
    """Hand the event to Celery; if the broker is down the sweeper publishes it later."""
    return publish_task(PROCESS_TASK, args=[str(event_pk)], countdown=countdown, force=force)


def webhook_event_process(*, event_pk) -> str:
    """Run the handler of one event if it is due and nobody else runs it. Safe to repeat."""
    now = timezone.now()
    claimed = WebhookEvent.objects.filter(
        pk=event_pk, status=WebhookEvent.Status.RECEIVED, available_at__lte=now
    ).update(status=WebhookEvent.Status.PROCESSING, locked_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return "skipped"
    event = WebhookEvent.objects.get(pk=event_pk)
    log = {
        "webhook_event": str(event.pk),
        "provider": event.provider,
        "type": event.type,
        "attempt": event.attempts,
    }
    handler = PROVIDERS[event.provider].HANDLERS.get(event.type)
    if handler is None:
        _finish(event, status=WebhookEvent.Status.IGNORED, note="no handler for this type")
        return "ignored"
    payload = json.loads(event.body)
    try:
        # The provider is read first, outside any transaction; then one transaction applies.
        with (
            fetch_of(handler, payload) as fetched,
            transaction.atomic(),
            pghistory.context(webhook_event=str(event.pk)),
        ):
            outcome = apply_of(handler, event, payload, fetched)
            _finish(
                event,
                status=WebhookEvent.Status.PROCESSED,
                note=outcome.note,
                customer_id=outcome.customer_id,
                related=outcome.related,
            )
    except Exception as exc:
        retryable = not isinstance(exc, ProviderError) or exc.retryable
        retry = retryable and event.attempts < settings.WEBHOOK_MAX_ATTEMPTS
        error = f"{exc.__class__.__name__}: {exc}"[:2000]
        if retry:
            delay = backoff_seconds(
                event.attempts,
                base=settings.WEBHOOK_BACKOFF_BASE_SECONDS,
                maximum=settings.WEBHOOK_BACKOFF_MAX_SECONDS,
                retry_after=getattr(exc, "retry_after", None),
            )
            WebhookEvent.objects.filter(pk=event.pk).update(
                status=WebhookEvent.Status.RECEIVED,
                last_error=error,
                locked_at=None,
                available_at=timezone.now() + timedelta(seconds=delay),
            )
            logger.warning("webhook handler failed; retrying", extra={**log, "error": error})
            webhook_publish(event_pk=event.pk, countdown=delay)
            return "retrying"
        _finish(event, status=WebhookEvent.Status.FAILED, error=error)
        logger.error("webhook handler failed for good", extra={**log, "error": error})
        return "failed"
    logger.info("webhook processed", extra=log)
    return "processed"


def _finish(
    event: WebhookEvent,
    *,
    status: str,
    note: str = "",
    error: str = "",
    customer_id=None,
    related: list | None = None,
) -> None:
    fields: dict[str, Any] = {
        "status": status,
        "note": note[:255],
        "last_error": error,
        "locked_at": None,
        "processed_at": timezone.now(),
    }
    if customer_id is not None:
        fields["customer_id"] = customer_id
    if related is not None:
        fields["related"] = related
    WebhookEvent.objects.filter(pk=event.pk).update(**fields)


def webhook_event_replay(*, event: WebhookEvent) -> str:
    """Run processing again from the stored body, now, unless a worker is on it."""
    stale = timezone.now() - timedelta(seconds=settings.OUTBOX_STALE_SECONDS)
    busy = WebhookEvent.objects.filter(
        pk=event.pk, status=WebhookEvent.Status.PROCESSING, locked_at__gte=stale
    )
    if busy.exists():
        return "busy"
    WebhookEvent.objects.filter(pk=event.pk).update(
        status=WebhookEvent.Status.RECEIVED,
        attempts=0,
        last_error="",
        locked_at=None,
        available_at=timezone.now(),
    )
    return webhook_event_process(event_pk=event.pk)


def webhook_sweep(*, limit: int = 1000) -> int:
    """Publish events whose task was lost (broker outage) and free those of dead workers."""
    now = timezone.now()
    stale = WebhookEvent.objects.filter(
        status=WebhookEvent.Status.PROCESSING,
        locked_at__lt=now - timedelta(seconds=settings.OUTBOX_STALE_SECONDS),
    )
    stale.filter(attempts__gte=settings.WEBHOOK_MAX_ATTEMPTS).update(
        status=WebhookEvent.Status.FAILED,
        locked_at=None,
        processed_at=now,
        last_error="worker died on every attempt (crash or time limit)",
    )
    stale.update(status=WebhookEvent.Status.RECEIVED, locked_at=None)
    _, published = republish_waiting(
        WebhookEvent.objects.filter(status=WebhookEvent.Status.RECEIVED),
        publish=lambda row: webhook_publish(event_pk=row.pk, force=True),
        limit=limit,
    )
    return published
