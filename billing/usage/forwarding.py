"""Forwarding usage to Lago (BILLING_ENGINE=lago): every event reaches Lago exactly once.

Records are written `pending`; recording them also queues a forwarding run (a row of
UsageForwardingRun, coalesced: one pending run stands for all pending records), which
core.queue retries like a provider sync (OUTBOX_* settings: more than a day). A run sends
pending records in batches of 100. A retry after a timeout or 5xx resends what was not
confirmed; Lago refuses an event it already holds with `value_already_exist` and, since one
such refusal rejects its whole batch, those events are marked sent and the rest of the
batch is sent again without them. One run at a time (an advisory lock): two would read the
same pending records and send them twice.
"""

import logging

from django.db import connection, transaction

from billing.providers import lago
from billing.providers.base import ProviderError, UsageEventData
from billing.usage.models import UsageForwardingRun, UsageRecord
from core.context import get_request_id
from core.locks import advisory_lock
from core.queue import RetryQueue

logger = logging.getLogger(__name__)
# Published by name: the task module imports this one, not the other way round.
PROCESS_TASK = "billing.usage.tasks.usage_forward"
BATCHES_PER_RUN = 50
LOCK = "usage:forward:lago"
# Seconds to wait when another run holds the lock.
BUSY_RETRY = 5.0

FORWARDING = RetryQueue(
    name="usage_forwarding",
    model=UsageForwardingRun,
    task=PROCESS_TASK,
    # A provider sync like the outbox's: it rides out the same day-long Lago outage.
    settings_prefix="OUTBOX",
    waiting=UsageForwardingRun.Status.PENDING,
    running=UsageForwardingRun.Status.PROCESSING,
    done=UsageForwardingRun.Status.DONE,
    failed=UsageForwardingRun.Status.FAILED,
    superseded=UsageForwardingRun.Status.SUPERSEDED,
)


def usage_forwarding_queue() -> int | None:
    """Called in the recording transaction: make sure a forwarding run is queued, and
    publish it after commit. The id of the run it queued, None if one was pending."""
    # ON CONFLICT against the partial unique index: concurrent recordings coalesce into
    # the pending run without a read-then-write race.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {UsageForwardingRun._meta.db_table}
                (status, attempts, available_at, last_error, request_id, created_at,
                 updated_at)
            VALUES ('pending', 0, clock_timestamp(), '', %s, clock_timestamp(),
                    clock_timestamp())
            ON CONFLICT (status) WHERE status = 'pending' DO NOTHING
            RETURNING id
            """,
            [get_request_id() or ""],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    run_id = row[0]
    transaction.on_commit(lambda: FORWARDING.publish(run_id, request_id=get_request_id()))
    return run_id


def usage_forwarding_process(*, run_id: int) -> str:
    """Run one forwarding run if it is due and no other run is sending. Safe to repeat."""
    run = FORWARDING.claim(run_id)
    if run is None:
        return "skipped"
    log = {"forwarding_run": run.pk, "attempt": run.attempts}
    with advisory_lock(LOCK) as acquired:
        if not acquired:
            FORWARDING.release(run, delay=BUSY_RETRY)
            return "busy"
        try:
            more = usage_forward_lago()
        except Exception as exc:
            if not isinstance(exc, ProviderError):
                logger.exception("usage forwarding crashed", extra=log)
            attempt = FORWARDING.failed_attempt(run, exc)
            logger.warning(
                "usage forwarding attempt failed",
                extra={**log, "error": attempt.error, "retry_in": attempt.retry_in},
            )
            return attempt.outcome
        if not FORWARDING.complete(run):
            return "lost"  # the sweep took it back: it runs again and finds less to send
    if more:
        usage_forwarding_queue()  # bounded per run: the next run takes over
    return "done"


def usage_forwarding_retry(*, run: UsageForwardingRun) -> str:
    """Staff asked to try a failed run again, now, from its first attempt."""
    return FORWARDING.retry(run)


def usage_forwarding_sweep(*, limit: int = 1000) -> int:
    """Re-publish due runs whose task was lost, and free runs of workers that died."""
    return FORWARDING.sweep(limit=limit)


def _lago_event(record: UsageRecord) -> UsageEventData:
    return UsageEventData(
        transaction_id=record.transaction_id,
        external_subscription_id=record.subscription.external_id,
        code=record.metric.code,
        timestamp=record.timestamp,
        properties=record.properties,
        precise_total_amount_cents=(
            None
            if record.precise_total_amount_cents is None
            else format(record.precise_total_amount_cents.normalize(), "f")
        ),
    )


def usage_forward_lago() -> bool:
    """Send pending records, oldest first, until none is left (bounded per run). True if
    records are left for another run."""
    return all(_forward_one_batch() for _ in range(BATCHES_PER_RUN))


def _forward_one_batch() -> bool:
    with transaction.atomic():
        batch = list(
            UsageRecord.objects.select_related("subscription", "metric")
            .filter(lago_status=UsageRecord.LagoStatus.PENDING)
            .order_by("received_at", "id")[: lago.BATCH_LIMIT]
        )
    if not batch:
        return False
    while batch:
        outcome = lago.events_batch(events=[_lago_event(r) for r in batch])
        if outcome.stored:
            _mark(batch, UsageRecord.LagoStatus.SENT)
            return True
        already = [r for i, r in enumerate(batch) if i in outcome.already_held]
        invalid = [r for i, r in enumerate(batch) if i in outcome.refused]
        _mark(already, UsageRecord.LagoStatus.SENT)
        _mark(invalid, UsageRecord.LagoStatus.REFUSED)
        for record in invalid:
            logger.error(
                "lago refused a usage event",
                extra={
                    "transaction_id": record.transaction_id,
                    "error": outcome.refused[batch.index(record)][:300],
                },
            )
        batch = [r for r in batch if r not in already and r not in invalid]
    return True


def _mark(records: list[UsageRecord], status: str) -> None:
    if records:
        UsageRecord.objects.filter(
            id__in=[r.id for r in records], timestamp__in={r.timestamp for r in records}
        ).update(lago_status=status)
