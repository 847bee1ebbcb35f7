"""The transactional outbox: provider syncs that survive provider and broker outages.

1. A `post_save` receiver calls `outbox_record_sync` inside the saving transaction; the row
   commits or rolls back with the change, and `on_commit` publishes a Celery task.
2. The task claims the row (one atomic UPDATE, so two deliveries cannot both run it),
   calls the registered handler, and records the outcome.
3. A failure that may pass (timeout, 429, 5xx) is retried with exponential backoff and
   jitter; a refusal, or too many attempts, marks the row failed for staff to see.
4. `outbox_sweep` (beat) re-publishes rows whose task was lost, e.g. while Redis was down.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pghistory
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Model
from django.utils import timezone

from billing.providers import provider_enabled
from billing.providers.base import ProviderError
from billing.sync.models import OutboxMessage
from core.context import get_request_id
from core.locks import advisory_lock
from core.publish import publish_task, republish_waiting
from core.retry import backoff_seconds

logger = logging.getLogger(__name__)

Handler = Callable[[str], None]
# Published by name: the task module imports this one, not the other way round.
PROCESS_TASK = "billing.sync.tasks.outbox_process"
# Seconds to wait when another worker holds the object's lock.
BUSY_RETRY = 5.0


@dataclass(frozen=True)
class _Route:
    provider: str
    handler: Handler


_routes: dict[str, list[_Route]] = {}


def register(action: str, provider: str) -> Callable[[Handler], Handler]:
    """Declare that `handler(object_id)` brings objects of `action` to `provider`."""

    def decorator(handler: Handler) -> Handler:
        _routes.setdefault(action, []).append(_Route(provider=provider, handler=handler))
        return handler

    return decorator


def _handler(provider: str, action: str) -> Handler:
    for route in _routes.get(action, []):
        if route.provider == provider:
            return route.handler
    raise LookupError(f"no outbox handler for {provider} {action}")


def object_type_of(instance: Model) -> str:
    return instance._meta.label_lower


def outbox_record_sync(*, instance: Model, action: str) -> list[int]:
    """Record that `instance` must reach every enabled provider of `action`."""
    return outbox_record(
        action=action, object_type=object_type_of(instance), object_id=str(instance.pk)
    )


def outbox_record(*, action: str, object_type: str, object_id: str) -> list[int]:
    """Record work for every enabled provider of `action`, published after commit."""
    created = []
    for route in _routes.get(action, []):
        if not provider_enabled(route.provider):
            continue
        message_id = _insert_pending(
            provider=route.provider,
            action=action,
            object_type=object_type,
            object_id=object_id,
        )
        if message_id is not None:
            created.append(message_id)
    for message_id in created:
        transaction.on_commit(
            lambda message_id=message_id: outbox_publish(
                message_id=message_id, request_id=get_request_id()
            )
        )
    return created


def _insert_pending(*, provider: str, action: str, object_type: str, object_id: str) -> int | None:
    # ON CONFLICT against the partial unique index coalesces repeated saves into the
    # pending row that is already waiting; no read-then-write race.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {OutboxMessage._meta.db_table}
                (provider, action, object_type, object_id, status, attempts, available_at,
                 last_error, request_id, created_at, updated_at)
            VALUES (%s, %s, %s, %s, 'pending', 0, clock_timestamp(), '', %s,
                    clock_timestamp(), clock_timestamp())
            ON CONFLICT (provider, action, object_type, object_id) WHERE status = 'pending'
            DO NOTHING
            RETURNING id
            """,
            [provider, action, object_type, object_id, get_request_id() or ""],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def outbox_publish(
    *, message_id: int, countdown: float = 0, request_id: str | None = None, force: bool = False
) -> bool:
    """Hand the message to Celery; if the broker is down the row waits for the sweeper.

    `request_id` is the id of the request that caused the message, so a task re-published
    by the sweeper still logs under the request that asked for it.
    """
    return publish_task(
        PROCESS_TASK,
        args=[message_id],
        countdown=countdown,
        request_id=request_id,
        force=force,
    )


def _claim(message_id: int) -> OutboxMessage | None:
    # Attempts count at the claim, so a message that kills its worker still runs out.
    now = timezone.now()
    claimed = OutboxMessage.objects.filter(
        pk=message_id, status=OutboxMessage.Status.PENDING, available_at__lte=now
    ).update(status=OutboxMessage.Status.PROCESSING, locked_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    return OutboxMessage.objects.get(pk=message_id)


def _object_lock(message: OutboxMessage):
    """One worker at a time per object and provider, so an older state never lands last.

    A session-level advisory lock, not a row lock: the handler commits as it goes (a Stripe
    id must be stored the moment Stripe returns it) and holds no row while it waits on the
    network. The lock dies with the connection if the worker does.
    """
    return advisory_lock(
        f"outbox:{message.provider}:{message.action}:{message.object_type}:{message.object_id}"
    )


def outbox_process(*, message_id: int) -> str:
    """Run one message if it is due and nobody else runs it. Safe to call any number of times."""
    message = _claim(message_id)
    if message is None:
        return "skipped"
    attempt = message.attempts
    log = {
        "outbox_id": message.pk,
        "provider": message.provider,
        "action": message.action,
        "object_id": message.object_id,
        "attempt": attempt,
    }
    with _object_lock(message) as acquired:
        if not acquired:
            # Another worker is syncing this object; try again shortly, without a penalty.
            _finish(message, attempt=attempt - 1, error=message.last_error, retry_in=BUSY_RETRY)
            outbox_publish(
                message_id=message.pk, countdown=BUSY_RETRY, request_id=message.request_id
            )
            return "busy"
        return _run(message, attempt=attempt, log=log)


def _run(message: OutboxMessage, *, attempt: int, log: dict) -> str:
    try:
        with pghistory.context(outbox_id=message.pk, provider=message.provider):
            _handler(message.provider, message.action)(message.object_id)
    except Exception as exc:
        if isinstance(exc, ProviderError):
            retryable, retry_after = exc.retryable, getattr(exc, "retry_after", None)
        else:
            # A bug, not a provider refusal: retry a few times, then stop and show it.
            retryable, retry_after = True, None
            logger.exception("outbox handler crashed", extra=log)
        retry = retryable and attempt < settings.OUTBOX_MAX_ATTEMPTS
        delay = _backoff(attempt, retry_after) if retry else None
        error = f"{exc.__class__.__name__}: {exc}"
        _finish(message, attempt=attempt, error=error, retry_in=delay)
        logger.warning("outbox attempt failed", extra={**log, "error": error, "retry_in": delay})
        if delay is not None:
            outbox_publish(message_id=message.pk, countdown=delay, request_id=message.request_id)
        return "retrying" if retry else "failed"
    _finish(message, attempt=attempt, error="", retry_in=None, done=True)
    logger.info("outbox message processed", extra=log)
    return "done"


def _backoff(attempt: int, retry_after: float | None = None) -> float:
    return backoff_seconds(
        attempt,
        base=settings.OUTBOX_BACKOFF_BASE_SECONDS,
        maximum=settings.OUTBOX_BACKOFF_MAX_SECONDS,
        retry_after=retry_after,
    )


def _finish(
    message: OutboxMessage, *, attempt: int, error: str, retry_in: float | None, done: bool = False
) -> None:
    now = timezone.now()
    fields = {"attempts": attempt, "last_error": error[:2000], "locked_at": None}
    if done:
        fields.update(status=OutboxMessage.Status.DONE, processed_at=now)
    elif retry_in is None:
        fields.update(status=OutboxMessage.Status.FAILED, processed_at=now)
    else:
        fields.update(
            status=OutboxMessage.Status.PENDING, available_at=now + timedelta(seconds=retry_in)
        )
    _update_or_supersede(message, fields)


def _update_or_supersede(message: OutboxMessage, fields: dict, only_if: dict | None = None) -> None:
    rows = OutboxMessage.objects.filter(pk=message.pk, **(only_if or {}))
    try:
        with transaction.atomic():
            rows.update(**fields)
    except IntegrityError:
        # A newer change already queued a pending message for this object; it carries
        # the latest state, so this one steps aside.
        fields.update(status=OutboxMessage.Status.SUPERSEDED, processed_at=timezone.now())
        rows.update(**fields)


def outbox_retry(*, message: OutboxMessage) -> None:
    """Staff asked to try a failed message again, now, from its first attempt."""
    _update_or_supersede(
        message,
        {
            "status": OutboxMessage.Status.PENDING,
            "attempts": 0,
            "available_at": timezone.now(),
            "last_error": "",
            "processed_at": None,
            "locked_at": None,
        },
    )
    transaction.on_commit(
        lambda: outbox_publish(message_id=message.pk, request_id=message.request_id or None)
    )


def outbox_sweep(*, limit: int = 1000) -> int:
    """Re-publish due rows whose task was lost, and free rows of workers that died."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.OUTBOX_STALE_SECONDS)
    for message in OutboxMessage.objects.filter(
        status=OutboxMessage.Status.PROCESSING, locked_at__lt=stale
    ):
        if message.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            fields = {
                "status": OutboxMessage.Status.FAILED,
                "processed_at": now,
                "last_error": "worker died on every attempt (crash or time limit)",
            }
        else:
            fields = {"status": OutboxMessage.Status.PENDING}
        _update_or_supersede(
            message,
            {**fields, "locked_at": None},
            only_if={"status": OutboxMessage.Status.PROCESSING, "locked_at": message.locked_at},
        )
    due, published = republish_waiting(
        OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING),
        publish=lambda row: outbox_publish(
            message_id=row.pk, request_id=row.request_id or None, force=True
        ),
        limit=limit,
    )
    if due:
        logger.info("outbox sweep", extra={"due": due, "published": published})
    return published
