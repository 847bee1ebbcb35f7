"""The retry-queue mechanism itself (core.queue), against the real PostgreSQL.

It is exercised on the outbox's table through a queue of its own (settings prefix TESTQ),
so what is checked is the mechanism, not the outbox's handlers.
"""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from billing.sync.models import OutboxMessage
from billing.sync.outbox import OUTBOX
from billing.usage.forwarding import FORWARDING
from core.exceptions import Conflict, ProviderError, ProviderUnavailable
from core.queue import WORKER_DIED, RetryQueue
from core.retry import backoff_bounds
from tests.factories import OutboxMessageFactory
from tests.helpers.concurrency import race

Status = OutboxMessage.Status
QUEUE = RetryQueue(
    name="test",
    model=OutboxMessage,
    task="tests.core.test_queue.nothing",  # never consumed: the tests' broker is flushed
    settings_prefix="TESTQ",
    waiting=Status.PENDING,
    running=Status.PROCESSING,
    done=Status.DONE,
    failed=Status.FAILED,
    superseded=Status.SUPERSEDED,
)


@pytest.fixture(autouse=True)
def numbers(settings):
    settings.TESTQ_MAX_ATTEMPTS = 3
    settings.TESTQ_BACKOFF_BASE_SECONDS = 100.0
    settings.TESTQ_BACKOFF_MAX_SECONDS = 1000.0
    settings.QUEUE_STALE_SECONDS = 600
    settings.SWEEP_GRACE_SECONDS = 60
    settings.SWEEP_REPUBLISH_SECONDS = 300


def make_row(object_id: str | None = None, **fields) -> OutboxMessage:
    return OutboxMessageFactory(
        provider="lago",
        action="test.work",
        object_type="tests.thing",
        object_id=object_id or uuid.uuid4().hex[:12],
        **fields,
    )


def make_due(row: OutboxMessage) -> None:
    OutboxMessage.objects.filter(pk=row.pk).update(available_at=timezone.now())


def fresh(row: OutboxMessage) -> OutboxMessage:
    return OutboxMessage.objects.get(pk=row.pk)


@pytest.mark.django_db
def test_a_row_is_claimed_once_and_the_attempt_counts_at_the_claim():
    row = make_row()
    claimed = QUEUE.claim(row.pk)
    assert claimed is not None
    assert claimed.status == "processing" and claimed.attempts == 1 and claimed.locked_at
    assert QUEUE.claim(row.pk) is None  # a second delivery of the same task
    assert fresh(row).attempts == 1


@pytest.mark.django_db
def test_a_row_that_is_not_due_is_not_claimed():
    row = make_row(available_at=timezone.now() + timedelta(minutes=1))
    assert QUEUE.claim(row.pk) is None
    assert fresh(row).status == "pending" and fresh(row).attempts == 0


@pytest.mark.django_db(transaction=True)
def test_racing_workers_claim_a_row_once():
    row = make_row()
    claims = race([lambda: QUEUE.claim(row.pk)] * 5)
    assert sum(claim is not None for claim in claims) == 1
    assert fresh(row).attempts == 1


@pytest.mark.django_db
def test_a_failure_backs_off_exponentially_within_the_jitter_bounds():
    row = make_row()
    for attempt in (1, 2):
        claimed = QUEUE.claim(row.pk)
        before = timezone.now()
        outcome = QUEUE.failed_attempt(claimed, ProviderUnavailable("lago", "503"))
        after = timezone.now()
        assert outcome.outcome == "retrying"
        low, high = backoff_bounds(attempt, base=100, maximum=1000)
        stored = fresh(row)
        assert stored.status == "pending" and stored.attempts == attempt
        assert stored.locked_at is None and "503" in stored.last_error
        assert before + timedelta(seconds=low) <= stored.available_at
        assert stored.available_at <= after + timedelta(seconds=high)
        assert QUEUE.claim(row.pk) is None  # backing off: not due yet
        make_due(row)


@pytest.mark.django_db
def test_retry_after_is_a_floor_and_the_cap_holds():
    row = make_row()
    claimed = QUEUE.claim(row.pk)
    before = timezone.now()
    QUEUE.failed_attempt(claimed, ProviderUnavailable("lago", "429", retry_after=5000))
    assert fresh(row).available_at >= before + timedelta(seconds=5000)
    assert backoff_bounds(20, base=100, maximum=1000) == (500, 1000)


@pytest.mark.django_db
def test_a_refusal_fails_at_once_and_a_bug_is_retried():
    refused, crashed = make_row(), make_row()
    outcome = QUEUE.failed_attempt(QUEUE.claim(refused.pk), ProviderError("lago", "401"))
    assert outcome.outcome == "failed" and outcome.retry_in is None
    assert fresh(refused).status == "failed" and fresh(refused).processed_at
    outcome = QUEUE.failed_attempt(QUEUE.claim(crashed.pk), KeyError("bug"))
    assert outcome.outcome == "retrying"


@pytest.mark.django_db
def test_attempts_run_out_and_the_row_fails():
    row = make_row()
    outcomes = []
    for _ in range(3):  # TESTQ_MAX_ATTEMPTS
        make_due(row)
        outcomes.append(QUEUE.failed_attempt(QUEUE.claim(row.pk), TimeoutError("slow")).outcome)
    assert outcomes == ["retrying", "retrying", "failed"]
    stored = fresh(row)
    assert stored.status == "failed" and stored.attempts == 3
    assert stored.last_error == "TimeoutError: slow"


@pytest.mark.django_db
def test_success_is_recorded_with_the_users_fields():
    row = make_row()
    assert QUEUE.complete(QUEUE.claim(row.pk))
    stored = fresh(row)
    assert stored.status == "done" and stored.processed_at and stored.locked_at is None


@pytest.mark.django_db
def test_a_released_row_waits_without_losing_an_attempt():
    row = make_row()
    assert QUEUE.release(QUEUE.claim(row.pk), delay=5) == "retrying"
    stored = fresh(row)
    assert stored.status == "pending" and stored.attempts == 0
    assert stored.available_at > timezone.now()


@pytest.mark.django_db
def test_rows_of_dead_workers_wait_again_and_the_late_worker_records_nothing():
    row = make_row()
    QUEUE.claim(row.pk)
    OutboxMessage.objects.filter(pk=row.pk).update(
        locked_at=timezone.now() - timedelta(seconds=601)
    )
    late_worker = fresh(row)  # holds the claim made 601 s ago
    running = make_row()
    QUEUE.claim(running.pk)  # a live worker: left alone
    assert QUEUE.recover_stale() == 1
    assert fresh(row).status == "pending" and fresh(row).attempts == 1
    assert fresh(running).status == "processing"
    # The sweep took the row back: its old worker can no longer write an outcome over it.
    assert not QUEUE.complete(late_worker)
    assert fresh(row).status == "pending"


@pytest.mark.django_db
def test_a_row_that_kills_every_worker_ends_failed():
    row = make_row()
    for _ in range(3):
        make_due(row)
        QUEUE.claim(row.pk)
        OutboxMessage.objects.filter(pk=row.pk).update(
            locked_at=timezone.now() - timedelta(hours=1)
        )
        QUEUE.recover_stale()
    stored = fresh(row)
    assert stored.status == "failed" and stored.attempts == 3
    assert stored.last_error == WORKER_DIED


@pytest.mark.django_db
def test_going_back_to_wait_beside_a_newer_waiting_row_supersedes():
    row = make_row("same")
    claimed = QUEUE.claim(row.pk)
    newer = make_row("same")  # the object changed while the worker ran
    assert QUEUE.failed_attempt(claimed, TimeoutError()).outcome == "superseded"
    assert fresh(row).status == "superseded"
    assert fresh(newer).status == "pending"


@pytest.mark.django_db
def test_staff_retry_starts_over_and_refuses_rows_it_cannot_take():
    row = make_row()
    QUEUE.failed_attempt(QUEUE.claim(row.pk), ProviderError("lago", "401"))
    assert QUEUE.retry(fresh(row)) == "pending"
    stored = fresh(row)
    assert stored.status == "pending" and stored.attempts == 0
    assert stored.last_error == "" and stored.processed_at is None
    assert stored.available_at <= timezone.now()

    QUEUE.claim(row.pk)
    with pytest.raises(Conflict, match="processing it right now"):
        QUEUE.retry(fresh(row))  # a live worker holds it
    OutboxMessage.objects.filter(pk=row.pk).update(locked_at=timezone.now() - timedelta(hours=1))
    assert QUEUE.retry(fresh(row)) == "pending"  # its worker died: taken back

    QUEUE.complete(QUEUE.claim(row.pk))
    with pytest.raises(Conflict, match="It is done"):
        QUEUE.retry(fresh(row))


@pytest.mark.django_db
def test_staff_retry_of_a_row_a_newer_one_replaced_supersedes_it():
    old = make_row("same", status="failed")
    make_row("same")
    assert QUEUE.retry(old) == "superseded"
    assert fresh(old).status == "superseded"


@pytest.mark.django_db
def test_the_sweep_republishes_only_due_rows_past_the_grace_period():
    now = timezone.now()
    lost = make_row(available_at=now - timedelta(minutes=2))
    just_queued = make_row(available_at=now)
    backing_off = make_row(available_at=now + timedelta(minutes=5))
    running = make_row(available_at=now - timedelta(minutes=2))
    QUEUE.claim(running.pk)
    failed = make_row(available_at=now - timedelta(minutes=2), status="failed")

    assert QUEUE.sweep() == 1
    assert fresh(lost).published_at is not None
    for untouched in (just_queued, backing_off, running, failed):
        assert fresh(untouched).published_at is None
    assert QUEUE.sweep() == 0  # published just now: not again for SWEEP_REPUBLISH_SECONDS
    OutboxMessage.objects.filter(pk=lost.pk).update(published_at=now - timedelta(minutes=6))
    assert QUEUE.sweep() == 1


@pytest.mark.django_db
def test_the_sweep_frees_rows_of_dead_workers_and_publishes_them():
    row = make_row(available_at=timezone.now() - timedelta(minutes=20))
    QUEUE.claim(row.pk)
    OutboxMessage.objects.filter(pk=row.pk).update(locked_at=timezone.now() - timedelta(hours=1))
    assert QUEUE.sweep() == 1
    assert fresh(row).status == "pending"


def test_provider_syncs_ride_out_a_day_long_outage(settings):
    """The configured schedule, with every delay at the low end of its jitter, still
    spans a day before the last attempt: a provider down for 24 h fails no sync."""
    for queue in (OUTBOX, FORWARDING):
        policy = queue.policy()
        shortest = sum(
            backoff_bounds(attempt, base=policy.backoff_base, maximum=policy.backoff_max)[0]
            for attempt in range(1, policy.max_attempts)  # no delay after the last attempt
        )
        assert shortest >= 24 * 3600, (queue, shortest / 3600)
        # Once the provider is back, the next attempt is at most the cap away.
        assert policy.backoff_max <= 3600
