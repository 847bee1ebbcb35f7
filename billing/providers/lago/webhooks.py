"""Webhooks out of Lago: their signature (`hmac` or `jwt`) and their envelope,
`{webhook_type, object_type, organization_id, <object_type>: {...}}`."""

import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import jwt
from django.conf import settings
from django.core.cache import cache

from billing.providers.base import (
    LagoWebhook,
    ProviderError,
    SignedWebhook,
    WebhookPayloadError,
    WebhookSignatureError,
)
from billing.providers.lago.client import malformed, object_in, request, text_of, time_of
from billing.providers.lago.customers import parse_customer
from billing.providers.lago.invoices import parse_invoice
from billing.providers.lago.subscriptions import parse_subscription

logger = logging.getLogger(__name__)

PUBLIC_KEY_CACHE_KEY = "lago:webhook-public-key"
PUBLIC_KEY_FAILURE_CACHE_KEY = "lago:webhook-public-key-failing"
PUBLIC_KEY_TTL_SECONDS = 24 * 3600
# After a JWT fails with the cached key, look for a rotated key at most this often.
PUBLIC_KEY_REFRESH_SECONDS = 60
# After a failed fetch no other is tried for this long, doubling per failure up to the cap:
# a stream of forged tokens while Lago is down must not become a stream of outbound calls.
PUBLIC_KEY_BACKOFF_BASE_SECONDS = 5
PUBLIC_KEY_BACKOFF_MAX_SECONDS = 300
# What an unauthenticated sender is told: nothing about our state or Lago's.
JWT_REJECTED = "JWT signature rejected"
_public_key_memo: dict[str, Any] = {}


def reset_public_key_cache() -> None:
    """Forget the key and any fetch backoff (tests, or after fixing Lago's configuration)."""
    _public_key_memo.clear()
    cache.delete_many([PUBLIC_KEY_CACHE_KEY, PUBLIC_KEY_FAILURE_CACHE_KEY])


def verify_webhook(*, payload: bytes, headers: Any) -> SignedWebhook:
    """Check a Lago webhook's signature (`hmac` or `jwt`) and return it, keyed by its
    `X-Lago-Unique-Key` (the same across Lago's retries).

    Raises WebhookSignatureError. HMAC is base64 of HMAC-SHA256 over the raw body with the
    organisation's HMAC key; JWT is RS256 with the raw body in its `data` claim.
    """
    algorithm = (headers.get("X-Lago-Signature-Algorithm") or "").lower()
    signature = headers.get("X-Lago-Signature") or ""
    if not signature:
        raise WebhookSignatureError("missing X-Lago-Signature header")
    if algorithm == "hmac":
        _verify_hmac(payload, signature)
    elif algorithm == "jwt":
        _verify_jwt(payload, signature)
    else:
        raise WebhookSignatureError(f"unsupported X-Lago-Signature-Algorithm {algorithm!r}")
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise WebhookPayloadError("signed body is not JSON") from exc
    webhook_type = body.get("webhook_type") if isinstance(body, dict) else None
    if not isinstance(webhook_type, str) or not webhook_type:
        raise WebhookPayloadError("signed body is not a Lago webhook")
    unique_key = headers.get("X-Lago-Unique-Key") or ""
    if not unique_key:
        raise WebhookSignatureError("missing X-Lago-Unique-Key header")
    return SignedWebhook(event_id=unique_key, event_type=webhook_type, payload=body)


def _verify_hmac(payload: bytes, signature: str) -> None:
    if not settings.LAGO_WEBHOOK_HMAC_KEY:
        raise WebhookSignatureError("LAGO_WEBHOOK_HMAC_KEY is not set")
    digest = hmac.new(settings.LAGO_WEBHOOK_HMAC_KEY.encode(), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(base64.b64encode(digest).decode(), signature.strip()):
        raise WebhookSignatureError("HMAC signature mismatch")


def _verify_jwt(payload: bytes, token: str) -> None:
    """The sender is told only JWT_REJECTED; the reason goes to the log."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise _rejected("malformed token", exc) from exc
    if header.get("alg") != "RS256":  # refused before any key fetch
        raise _rejected("algorithm is not RS256")
    try:
        claims = _decode_jwt(token, _public_key(refresh=False))
    except jwt.InvalidSignatureError:
        # Lago may have rotated its key: fetch it again (rate-limited) and retry once.
        key = _public_key(refresh=True)
        try:
            claims = _decode_jwt(token, key)
        except jwt.PyJWTError as exc:
            raise _rejected("invalid token", exc) from exc
    except jwt.PyJWTError as exc:
        raise _rejected("invalid token", exc) from exc
    if claims.get("data") != payload.decode("utf-8", errors="replace"):
        raise _rejected("data claim does not match the body")


def _rejected(reason: str, exc: Exception | None = None) -> WebhookSignatureError:
    logger.warning(
        "lago jwt rejected",
        extra={"reason": reason, "error": exc.__class__.__name__ if exc else None},
    )
    return WebhookSignatureError(JWT_REJECTED)


def _issuer() -> str:
    """Lago signs with `iss` = its LAGO_API_URL; LAGO_WEBHOOK_ISSUER when that differs
    from the URL this service calls it by."""
    issuer = settings.LAGO_WEBHOOK_ISSUER or settings.LAGO_API_URL or ""
    return issuer.rstrip("/")


def _decode_jwt(token: str, key: str) -> dict[str, Any]:
    claims = jwt.decode(
        token,
        key,
        algorithms=["RS256"],
        # exp is checked whenever present (Lago's tokens may carry none); iss always.
        options={"require": ["data", "iss"], "verify_exp": True},
        leeway=60,
    )
    if str(claims.get("iss", "")).rstrip("/") != _issuer() or not _issuer():
        raise jwt.InvalidIssuerError("unexpected iss")
    return claims


def _public_key(*, refresh: bool) -> str:
    """Lago's webhook public key (PEM), cached in the cache and in this process.

    A failed fetch is remembered too (here and in the cache, so every process backs off):
    until its backoff ends, no fetch is tried and the token is rejected at once.
    """
    now = time.monotonic()
    known = _public_key_memo.get("pem")
    if not refresh:
        pem = known or cache.get(PUBLIC_KEY_CACHE_KEY)
        if pem:
            _public_key_memo["pem"] = pem
            return pem
    elif known and now - _public_key_memo.get("fetched_at", -1e9) < PUBLIC_KEY_REFRESH_SECONDS:
        return known
    if now < _public_key_memo.get("retry_at", 0) or cache.get(PUBLIC_KEY_FAILURE_CACHE_KEY):
        if known:  # no refresh now: the token is checked against the key we have
            return known
        raise _rejected("Lago's public key is unavailable (fetch backing off)")
    _public_key_memo["fetched_at"] = now  # an attempt counts, success or not
    try:
        body = request("GET", "webhooks/json_public_key")
        pem = base64.b64decode(body["webhook"]["public_key"]).decode()
    except (ProviderError, KeyError, ValueError, TypeError) as exc:
        failures = _public_key_memo.get("failures", 0) + 1
        backoff = min(
            PUBLIC_KEY_BACKOFF_BASE_SECONDS * 2 ** (failures - 1), PUBLIC_KEY_BACKOFF_MAX_SECONDS
        )
        _public_key_memo.update(failures=failures, retry_at=now + backoff)
        cache.set(PUBLIC_KEY_FAILURE_CACHE_KEY, True, backoff)
        logger.warning(
            "lago public key fetch failed",
            extra={"error": str(exc), "failures": failures, "backoff_seconds": backoff},
        )
        if known:
            return known
        raise _rejected("Lago's public key is unavailable", exc) from exc
    _public_key_memo.update(pem=pem, failures=0, retry_at=0)
    cache.set(PUBLIC_KEY_CACHE_KEY, pem, PUBLIC_KEY_TTL_SECONDS)
    return pem


def parse_webhook(payload: Any) -> LagoWebhook:
    """The webhook's envelope, and its object typed when it is one we act on. Raises
    ProviderError (`malformed`) when an object we act on cannot be read."""
    webhook_type = payload.get("webhook_type") if isinstance(payload, dict) else None
    if not isinstance(webhook_type, str) or not webhook_type:
        raise malformed("webhook: no webhook_type")
    object_type = text_of(payload.get("object_type"))
    obj = payload.get(object_type) if object_type else None
    if not isinstance(obj, dict):
        obj = {}
    changed = [t for t in (time_of(obj.get("updated_at")), time_of(obj.get("created_at"))) if t]
    customer, subscription, invoice = None, None, None
    if object_type == "customer":
        customer = parse_customer(object_in(payload, object_type))
    elif object_type == "subscription":
        subscription = parse_subscription(object_in(payload, object_type))
    elif object_type == "invoice":
        invoice = parse_invoice(object_in(payload, object_type))
    return LagoWebhook(
        webhook_type=webhook_type,
        object_type=object_type,
        object_id=text_of(obj.get("lago_id") or obj.get("external_id") or ""),
        changed_at=max(changed) if changed else None,
        customer=customer,
        subscription=subscription,
        invoice=invoice,
        events_errors=_events_errors(obj) if object_type == "events_errors" else {},
    )


def _events_errors(obj: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """{error kind: the transaction ids Lago refused with it}."""
    return {
        text_of(kind): tuple(text_of(transaction_id) for transaction_id in transaction_ids)
        for kind, transaction_ids in obj.items()
        if isinstance(transaction_ids, list)
    }
