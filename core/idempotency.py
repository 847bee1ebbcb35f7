"""`Idempotency-Key` with Stripe's semantics, stored in PostgreSQL.

A key is claimed by inserting its row (the unique constraint decides between racing
requests), the request runs, and its response is saved in the same transaction as the
work it did, so a replay can never disagree with what was stored.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
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
    """Claim `key` for this request, or say how the earlier request with it ended."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise UnprocessableEntity(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
            code="invalid_idempotency_key",
        )
    now = timezone.now()
    for _ in range(3):
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(
                    api_key=api_key, key=key, fingerprint=fingerprint, locked_at=now
                )
        except IntegrityError:
            pass
        with transaction.atomic():
            existing = (
                IdempotencyKey.objects.select_for_update().filter(api_key=api_key, key=key).first()
            )
            if existing is None:
                continue  # released between our insert and our read: try again
            if existing.created_at < now - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS):
                existing.delete()
                continue
            if existing.fingerprint != fingerprint:
                raise UnprocessableEntity(
                    "This Idempotency-Key was used with a different request.",
                    code="idempotency_key_reused",
                )
            if existing.status == IdempotencyKey.Status.COMPLETED:
                return Replay(status=existing.response_status, body=existing.response_body)
            stale = now - timedelta(seconds=settings.IDEMPOTENCY_LOCK_TIMEOUT_SECONDS)
            if existing.locked_at < stale:
                # The first request died without answering; its work was rolled back with it.
                existing.locked_at = now
                existing.save(update_fields=["locked_at"])
                return existing
            raise Conflict(
                "A request with this Idempotency-Key is still being processed.",
                code="idempotency_key_in_use",
            )
    raise Conflict("Could not claim the Idempotency-Key; retry.", code="idempotency_key_in_use")


def idempotency_complete(*, claim: IdempotencyKey, status: int, body: str) -> None:
    IdempotencyKey.objects.filter(pk=claim.pk).update(
        status=IdempotencyKey.Status.COMPLETED, response_status=status, response_body=body
    )


def idempotency_release(*, claim: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=claim.pk, status=IdempotencyKey.Status.IN_PROGRESS).delete()


def idempotency_keys_purge() -> int:
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
