"""The transactional outbox: provider syncs that survive provider and broker outages.

1. A `post_save` receiver calls `outbox_record_sync` inside the saving transaction; the row
   commits or rolls back with the change, and `on_commit` publishes a Celery task.
2. The task claims the row through the retry queue (core.queue: one conditional UPDATE,
   so two deliveries cannot both run it), takes the object's advisory lock, calls the
   registered handler, and records the outcome.
3. A failure that may pass (timeout, 429, 5xx) is retried with exponential backoff and
   jitter for more than a day (OUTBOX_* settings); a refusal, or too many attempts, marks
   the row failed for staff to see.
4. `outbox_sweep` (beat) re-publishes rows whose task was lost, e.g. while Redis was down,
   and frees rows of workers that died.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import pghistory
from django.db import connection, transaction
from django.db.models import Model

from billing.providers import provider_enabled
from billing.providers.base import ProviderError, ProviderUnavailable
from billing.sync.models import OutboxMessage
from core.context import get_request_id
from core.locks import advisory_lock
from core.queue import RetryQueue

logger = logging.getLogger(__name__)

Handler = Callable[[str], None]
# Published by name: the task module imports this one, not the other way round.
PROCESS_TASK = "billing.sync.tasks.outbox_process"
# Seconds to wait when another worker holds the object's lock.
BUSY_RETRY = 5.0

OUTBOX = RetryQueue(
    name="outbox",
    model=OutboxMessage,
    task=PROCESS_TASK,
    settings_prefix="OUTBOX",
    waiting=OutboxMessage.Status.PENDING,
    running=OutboxMessage.Status.PROCESSING,
    done=OutboxMessage.Status.DONE,
    failed=OutboxMessage.Status.FAILED,
    superseded=OutboxMessage.Status.SUPERSEDED,
)


def waiting_for(what: str) -> ProviderUnavailable:
    """Raised by a handler whose dependency has not reached the provider yet: retried with
    backoff, since the dependency's own message is on its way."""
    return ProviderUnavailable("lago", f"waiting for {what} to reach Lago", code="dependency")


class NoHandler(LookupError):
    """No handler is registered for a message's action: retrying cannot help."""

    retryable = False


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
    raise NoHandler(f"no outbox handler for {provider} {action}")


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
    request_id = get_request_id()
    for message_id in created:
        transaction.on_commit(partial(outbox_publish, message_id=message_id, request_id=request_id))
    return created


def outbox_record_many(*, action: str, object_type: str, object_ids: list[str]) -> list[int]:
    """outbox_record() for many objects in one INSERT per provider (a billing run's page)."""
    created: list[int] = []
    if not object_ids:
        return created
    for route in _routes.get(action, []):
        if not provider_enabled(route.provider):
            continue
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {OutboxMessage._meta.db_table}
                    (provider, action, object_type, object_id, status, attempts, available_at,
                     last_error, request_id, created_at, updated_at)
                SELECT %s, %s, %s, object_id, 'pending', 0, clock_timestamp(), '', %s,
                       clock_timestamp(), clock_timestamp()
                FROM unnest(%s::text[]) AS object_id
                ON CONFLICT (provider, action, object_type, object_id) WHERE status = 'pending'
                DO NOTHING
                RETURNING id
                """,
                [route.provider, action, object_type, get_request_id() or "", object_ids],
            )
            created += [row[0] for row in cursor.fetchall()]
    request_id = get_request_id()
    for message_id in created:
        transaction.on_commit(partial(outbox_publish, message_id=message_id, request_id=request_id))
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
    return OUTBOX.publish(message_id, countdown=countdown, request_id=request_id, force=force)


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
    message = OUTBOX.claim(message_id)
    if message is None:
        return "skipped"
    log = {
        "outbox_id": message.pk,
        "provider": message.provider,
        "action": message.action,
        "object_id": message.object_id,
        "attempt": message.attempts,
    }
    with _object_lock(message) as acquired:
        if not acquired:
            # Another worker is syncing this object; try again shortly, without a penalty.
            OUTBOX.release(message, delay=BUSY_RETRY)
            return "busy"
        return _run(message, log=log)


def _run(message: OutboxMessage, *, log: dict) -> str:
    try:
        with pghistory.context(outbox_id=message.pk, provider=message.provider):
            _handler(message.provider, message.action)(message.object_id)
    except Exception as exc:
        if not isinstance(exc, ProviderError | NoHandler):
            # A bug, not a provider refusal: retried like an outage, shown on the row.
            logger.exception("outbox handler crashed", extra=log)
        attempt = OUTBOX.failed_attempt(message, exc)
        logger.warning(
            "outbox attempt failed",
            extra={**log, "error": attempt.error, "retry_in": attempt.retry_in},
        )
        return attempt.outcome
    if not OUTBOX.complete(message):
        return "lost"  # the sweep took it back: it runs again, harmlessly
    logger.info("outbox message processed", extra=log)
    return "done"


def outbox_retry(*, message: OutboxMessage) -> str:
    """Staff asked to try a failed (or waiting) message again, now, from its first attempt."""
    return OUTBOX.retry(message)


def outbox_sweep(*, limit: int = 1000) -> int:
    """Re-publish due rows whose task was lost, and free rows of workers that died."""
    return OUTBOX.sweep(limit=limit)
