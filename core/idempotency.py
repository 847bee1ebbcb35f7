"""`Idempotency-Key` with Stripe's semantics, stored in PostgreSQL.

A key is claimed by inserting its row (the unique constraint decides between racing
requests), the request runs, and its response is saved in the same transaction as the
work it did, so a replay can never disagree with what was stored.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from core.exceptions import Conflict, UnprocessableEntity
from core.models import ApiKey, IdempotencyKey

MAX_KEY_LENGTH = 255
# 4xx answers that come before any work started are not saved (Stripe does the same):
# the caller fixes the request and retries with the same key.
UNSAVED_STATUSES = {400, 401, 403, 404, 405, 415, 429}


@dataclass(frozen=True)
class Replay:
    status: int
    body: str


def request_fingerprint(*, method: str, path: str, body: bytes) -> str:
    try:
        # Key order and whitespace do not make a different request.
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":"))
    except (ValueError, UnicodeDecodeError):
        canonical = body.hex()
    return hashlib.sha256(f"{method}\n{path}\n{canonical}".encode()).hexdigest()


def idempotency_claim(*, api_key: ApiKey, key: str, fingerprint: str) -> IdempotencyKey | Replay:
    """Claim `key` for this request, or say how the earlier request with it ended.

    The request that owns a claim holds its row lock for as long as it works (see
    `idempotency_lock`), so "still running" is a lock held, never a guess from a clock.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise UnprocessableEntity(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
            code="invalid_idempotency_key",
        )
    for _ in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(
                    api_key=api_key, key=key, fingerprint=fingerprint, locked_at=now
                )
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(api_key=api_key, key=key).first()
        if existing is None:
            continue  # released between our insert and our read: try again
        expired = existing.created_at < now - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
        if not expired and existing.fingerprint != fingerprint:
            raise UnprocessableEntity(
                "This Idempotency-Key was used with a different request.",
                code="idempotency_key_reused",
            )
        if not expired and existing.status == IdempotencyKey.Status.COMPLETED:
            # `idempotency_complete` sets the status and the response in one UPDATE.
            assert existing.response_status is not None
            return Replay(status=existing.response_status, body=existing.response_body)
        taken = _take_over(existing, now=now, expired=expired)
        if taken == "retry":
            continue
        if taken is not None:
            return taken
        raise _in_use()
    raise _in_use()


def _take_over(
    existing: IdempotencyKey, *, now: datetime, expired: bool
) -> IdempotencyKey | Literal["retry"] | None:
    """Claim a row nobody is working on: expired, or left by a request that died."""
    with transaction.atomic():
        try:
            row = (
                IdempotencyKey.objects.select_for_update(nowait=True).filter(pk=existing.pk).first()
            )
        except OperationalError:
            return None  # its owner holds the lock: it is still running
        if row is None:
            return "retry"
        if expired:
            row.delete()
            return "retry"
        if row.status != IdempotencyKey.Status.IN_PROGRESS:
            return "retry"
        stale = now - timedelta(seconds=settings.IDEMPOTENCY_LOCK_TIMEOUT_SECONDS)
        if row.locked_at >= stale:
            return None  # claimed a moment ago; its owner is about to lock it
        # Unlocked and old: the owner died, and its work was rolled back with it.
        row.locked_at = now
        row.save(update_fields=["locked_at"])
        return row


def _in_use() -> Conflict:
    return Conflict(
        "A request with this Idempotency-Key is still being processed.",
        code="idempotency_key_in_use",
    )


def idempotency_lock(*, claim: IdempotencyKey) -> None:
    """Hold the claim for the whole work transaction; fail if another request took it."""
    held = (
        IdempotencyKey.objects.select_for_update()
        .filter(pk=claim.pk, locked_at=claim.locked_at, status=IdempotencyKey.Status.IN_PROGRESS)
        .exists()
    )
    if not held:
        raise _in_use()


def idempotency_complete(*, claim: IdempotencyKey, status: int, body: str) -> bool:
    updated = IdempotencyKey.objects.filter(pk=claim.pk, locked_at=claim.locked_at).update(
        status=IdempotencyKey.Status.COMPLETED, response_status=status, response_body=body
    )
    return bool(updated)


def idempotency_release(*, claim: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(
        pk=claim.pk, locked_at=claim.locked_at, status=IdempotencyKey.Status.IN_PROGRESS
    ).delete()


def idempotency_keys_purge() -> int:
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
