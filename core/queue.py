"""One durable retry queue, written once. The sync outbox, webhook processing and usage
forwarding each keep their own table and statuses and configure a `RetryQueue` over it.

- A row waits until `available_at`; a Celery task (published by name, so this module never
  imports its users) claims it with one conditional UPDATE, so two deliveries of a task
  cannot both run it. The attempt counts at the claim: a row that kills its worker still
  runs out of attempts.
- Only the claim's holder records the outcome (the UPDATE matches its `locked_at`): done;
  a retry after exponential backoff with jitter (a provider's `retry_after` is a floor);
  or failed, when the error says retrying cannot help (`retryable = False`, as a
  ProviderError refusal does) or the attempts are spent.
- `sweep` (beat) frees rows whose worker died (`running` for longer than any task may
  run, QUEUE_STALE_SECONDS) and re-publishes waiting rows whose task was lost.
- `retry` is staff's "try again now": from the first attempt, published after commit.

A user that coalesces work (at most one waiting row per object, a partial unique index)
names a `superseded` status: a row that cannot go back to waiting because a newer one
took its place steps aside, since the newer row carries the latest state.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import DatabaseError, IntegrityError, models, transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from core.exceptions import Conflict, NotFound
from core.metrics import register_database_collector
from core.publish import publish_task, republish_waiting
from core.retry import backoff_seconds

logger = logging.getLogger(__name__)
ERROR_LIMIT = 2000
WORKER_DIED = "worker died on every attempt (crash or time limit)"


class QueueRow(models.Model):
    """The fields the mechanism reads and writes. Each user adds its own `status` (with
    its own values) and a creation time (`created_at` unless told otherwise)."""

    attempts = models.PositiveIntegerField(default=0)
    available_at = models.DateTimeField(default=timezone.now)
    locked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    processed_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(
        null=True, blank=True, help_text="When the sweeper last re-published it."
    )
    request_id = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        abstract = True


Row = TypeVar("Row", bound=QueueRow)


@dataclass(frozen=True)
class Policy:
    max_attempts: int
    backoff_base: float
    backoff_max: float

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        return backoff_seconds(
            attempt, base=self.backoff_base, maximum=self.backoff_max, retry_after=retry_after
        )


@dataclass(frozen=True)
class Attempt:
    """What became of a failed attempt: `outcome` is retrying, failed, superseded, or
    lost (the claim had passed to someone else, so nothing was recorded)."""

    outcome: str
    error: str
    retry_in: float | None = None


@dataclass(frozen=True)
class Backlog:
    waiting: int
    retrying: int  # waiting rows that have failed at least once
    running: int
    failed: int
    oldest_waiting_age: float


class RetryQueue(Generic[Row]):
    """The mechanism over one table of `QueueRow`s.

    `settings_prefix` names the user's numbers, read at each use: `<prefix>_MAX_ATTEMPTS`,
    `<prefix>_BACKOFF_BASE_SECONDS`, `<prefix>_BACKOFF_MAX_SECONDS`. `task` is the name of
    the Celery task that processes one row, given its primary key. `retry_from` lists the
    statuses staff may retry from (default: failed and waiting).
    """

    def __init__(
        self,
        *,
        name: str,
        model: type[Row],
        task: str,
        settings_prefix: str,
        waiting: str,
        running: str,
        done: str,
        failed: str,
        superseded: str | None = None,
        retry_from: Iterable[str] | None = None,
        created_field: str = "created_at",
    ) -> None:
        self.name = name
        self.model = model
        self.task = task
        self.settings_prefix = settings_prefix
        self.waiting, self.running, self.done, self.failed = waiting, running, done, failed
        self.superseded = superseded
        self.retry_from = tuple(retry_from or (failed, waiting))
        self.created_field = created_field

    def __repr__(self) -> str:
        return f"<RetryQueue {self.name}>"

    def policy(self) -> Policy:
        prefix = self.settings_prefix
        return Policy(
            max_attempts=getattr(settings, f"{prefix}_MAX_ATTEMPTS"),
            backoff_base=getattr(settings, f"{prefix}_BACKOFF_BASE_SECONDS"),
            backoff_max=getattr(settings, f"{prefix}_BACKOFF_MAX_SECONDS"),
        )

    # --- publishing ------------------------------------------------------------------
    def publish(
        self, pk: Any, *, countdown: float = 0, request_id: str | None = None, force: bool = False
    ) -> bool:
        """Hand row `pk` to Celery; False if the broker is down (the sweep publishes it)."""
        arg = pk if isinstance(pk, int) else str(pk)
        return publish_task(
            self.task, args=[arg], countdown=countdown, request_id=request_id, force=force
        )

    def publish_on_commit(self, row: Row, *, countdown: float = 0) -> None:
        """Publish once the row's new state is committed (at once outside a transaction)."""
        pk, request_id = row.pk, row.request_id or None
        transaction.on_commit(lambda: self.publish(pk, countdown=countdown, request_id=request_id))

    # --- one attempt -----------------------------------------------------------------
    def claim(self, pk: Any) -> Row | None:
        """Take row `pk` if it is waiting and due; None if it is not (or someone has it)."""
        now = timezone.now()
        claimed = self._rows.filter(pk=pk, status=self.waiting, available_at__lte=now).update(
            status=self.running, locked_at=now, attempts=F("attempts") + 1
        )
        return self._rows.get(pk=pk) if claimed else None

    def complete(self, row: Row, *, status: str | None = None, **fields: Any) -> bool:
        """Record a claimed row's success: `done`, or a user's own ending (e.g. ignored),
        with the user's outcome fields. False if the claim was no longer held."""
        return (
            self._record(
                row,
                {
                    "status": status or self.done,
                    "last_error": "",
                    **fields,
                    "processed_at": timezone.now(),
                    "locked_at": None,
                },
            )
            is not None
        )

    def failed_attempt(self, row: Row, exc: BaseException) -> Attempt:
        """Record that a claimed row's attempt raised `exc`: retried later, or failed."""
        error = f"{exc.__class__.__name__}: {exc}"[:ERROR_LIMIT]
        policy = self.policy()
        if getattr(exc, "retryable", True) and row.attempts < policy.max_attempts:
            delay = policy.delay(row.attempts, getattr(exc, "retry_after", None))
            return self.retry_later(row, error=error, delay=delay)
        status = self._record(
            row,
            {
                "status": self.failed,
                "last_error": error,
                "processed_at": timezone.now(),
                "locked_at": None,
            },
        )
        return Attempt(self._outcome(status), error)

    def retry_later(self, row: Row, *, error: str, delay: float) -> Attempt:
        """Put a claimed row back to wait `delay` seconds, and publish it for then."""
        status = self._record(
            row,
            {
                "status": self.waiting,
                "last_error": error[:ERROR_LIMIT],
                "available_at": timezone.now() + timedelta(seconds=delay),
                "locked_at": None,
            },
        )
        if status == self.waiting:
            self.publish_on_commit(row, countdown=delay)
        return Attempt(self._outcome(status), error, delay if status == self.waiting else None)

    def release(self, row: Row, *, delay: float) -> str:
        """Hand a claimed row back uncounted: it could not start (another worker holds
        what it needs), which says nothing about whether it would succeed."""
        status = self._record(
            row,
            {
                "status": self.waiting,
                "attempts": F("attempts") - 1,
                "available_at": timezone.now() + timedelta(seconds=delay),
                "locked_at": None,
            },
        )
        if status == self.waiting:
            self.publish_on_commit(row, countdown=delay)
        return self._outcome(status)

    # --- staff -----------------------------------------------------------------------
    def retry(self, row: Row, *, publish: bool = True, **fields: Any) -> str:
        """Staff's "try again now": back to waiting from the first attempt, published after
        commit (unless `publish` is False: the caller runs it itself). A row a live worker
        holds is refused (Conflict); one whose worker died is taken back. Returns the new
        status (superseded if a newer waiting row already stands for it)."""
        now = timezone.now()
        allowed = Q(status__in=self.retry_from) | Q(
            status=self.running, locked_at__lt=self._stale_before(now)
        )
        status = self._update(
            row.pk,
            {
                "status": self.waiting,
                "attempts": 0,
                "available_at": now,
                "last_error": "",
                "processed_at": None,
                "locked_at": None,
                **fields,
            },
            only_if=allowed,
        )
        if status is None:
            current = self._rows.filter(pk=row.pk).values_list("status", flat=True).first()
            if current is None:
                raise NotFound("It no longer exists.")
            if current == self.running:
                raise Conflict("A worker is processing it right now.", code="queue_row_running")
            raise Conflict(
                f"It is {current}; only {', '.join(self.retry_from)} can be retried.",
                code="queue_row_not_retryable",
            )
        if status == self.waiting and publish:
            self.publish_on_commit(row)
        return status

    # --- the sweep -------------------------------------------------------------------
    def recover_stale(self, *, limit: int = 1000) -> int:
        """Rows `running` for longer than any task may run belong to a dead worker: they
        wait again, or fail once their attempts are spent (the claims counted them)."""
        now = timezone.now()
        max_attempts = self.policy().max_attempts
        stale = (
            self._rows.filter(status=self.running, locked_at__lt=self._stale_before(now))
            .order_by("locked_at")
            .values_list("pk", "attempts", "locked_at")[:limit]
        )
        recovered = 0
        for pk, attempts, locked_at in stale:
            if attempts >= max_attempts:
                fields = {"status": self.failed, "processed_at": now, "last_error": WORKER_DIED}
            else:
                fields = {"status": self.waiting}
            held = Q(status=self.running, locked_at=locked_at)
            if self._update(pk, {**fields, "locked_at": None}, only_if=held) is not None:
                recovered += 1
        if recovered:
            logger.warning("queue rows of dead workers freed", extra=self._log(rows=recovered))
        return recovered

    def sweep(self, *, limit: int = 1000) -> int:
        """Free rows of dead workers, then re-publish waiting rows whose task may be lost
        (after SWEEP_GRACE_SECONDS, at most every SWEEP_REPUBLISH_SECONDS). Returns how
        many were published."""
        self.recover_stale(limit=limit)
        due, published = republish_waiting(
            self._rows.filter(status=self.waiting),
            publish=lambda row: self.publish(row.pk, request_id=row.request_id or None, force=True),
            limit=limit,
        )
        if due:
            logger.info("queue sweep", extra=self._log(due=due, published=published))
        return published

    # --- reading ---------------------------------------------------------------------
    def backlog(self) -> Backlog:
        waiting = Q(status=self.waiting)
        unfinished = self._rows.filter(status__in=[self.waiting, self.running]).aggregate(
            waiting=Count("pk", filter=waiting),
            retrying=Count("pk", filter=waiting & Q(attempts__gt=0)),
            running=Count("pk", filter=Q(status=self.running)),
            oldest=Min(self.created_field, filter=waiting),
        )
        oldest = unfinished["oldest"]
        return Backlog(
            waiting=unfinished["waiting"],
            retrying=unfinished["retrying"],
            running=unfinished["running"],
            failed=self._rows.filter(status=self.failed).count(),
            oldest_waiting_age=(timezone.now() - oldest).total_seconds() if oldest else 0.0,
        )

    # --- internals -------------------------------------------------------------------
    @property
    def _rows(self) -> "models.QuerySet[Row]":
        return self.model._default_manager.all()

    def _stale_before(self, now: datetime) -> datetime:
        return now - timedelta(seconds=settings.QUEUE_STALE_SECONDS)

    def _record(self, row: Row, fields: dict[str, Any]) -> str | None:
        """Write a claimed row's outcome, only while this worker still holds the claim: a
        row the sweep took back (and maybe another worker claimed) is not overwritten."""
        held = Q(status=self.running, locked_at=row.locked_at)
        status = self._update(row.pk, fields, only_if=held)
        if status is None:
            logger.warning(
                "queue row no longer held by this worker; outcome not recorded",
                extra=self._log(row=str(row.pk)),
            )
        return status

    def _update(self, pk: Any, fields: dict[str, Any], *, only_if: Q) -> str | None:
        """Apply `fields` to row `pk` if it matches `only_if`; the status it ends in, or
        None if it did not match."""
        rows = self._rows.filter(only_if, pk=pk)
        try:
            with transaction.atomic():
                updated = rows.update(**fields)
        except IntegrityError:
            if self.superseded is None:
                raise
            # Back to waiting collides with a newer waiting row for the same work.
            fields = {
                **fields,
                "status": self.superseded,
                "processed_at": timezone.now(),
                "locked_at": None,
            }
            updated = rows.update(**fields)
        return fields["status"] if updated else None

    def _outcome(self, status: str | None) -> str:
        if status is None:
            return "lost"
        if status == self.waiting:
            return "retrying"
        if status == self.superseded:
            return "superseded"
        return str(status)

    def _log(self, **extra: Any) -> dict[str, Any]:
        return {"queue": self.name, **extra}


# --- /metrics -------------------------------------------------------------------------
_with_metrics: list[RetryQueue[Any]] = []


def queue_metrics_register(queue: RetryQueue[Any]) -> None:
    """Export `queue`'s backlog in /metrics (call it from the user's AppConfig.ready())."""
    if all(known.name != queue.name for known in _with_metrics):
        _with_metrics.append(queue)


class QueueBacklogCollector:
    """Every registered queue's backlog, read from the database at scrape time."""

    def collect(self):
        rows = GaugeMetricFamily(
            "queue_rows",
            "Rows of each retry queue by state: waiting, running, failed.",
            labels=["queue", "state"],
        )
        retrying = GaugeMetricFamily(
            "queue_rows_retrying",
            "Waiting rows that have failed at least once (a dependency keeps failing).",
            labels=["queue"],
        )
        oldest = GaugeMetricFamily(
            "queue_oldest_waiting_age_seconds",
            "Age of each queue's oldest waiting row (0 when none waits).",
            labels=["queue"],
        )
        for queue in _with_metrics:
            try:
                backlog = queue.backlog()
            except DatabaseError:
                continue
            for state in ("waiting", "running", "failed"):
                rows.add_metric([queue.name, state], getattr(backlog, state))
            retrying.add_metric([queue.name], backlog.retrying)
            oldest.add_metric([queue.name], backlog.oldest_waiting_age)
        yield rows
        yield retrying
        yield oldest


register_database_collector(QueueBacklogCollector())
