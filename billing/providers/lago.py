"""The only module that talks to Lago's HTTP API (the usage-based billing engine).

A small client over a `requests.Session` (see PROVIDERS.md on the official client): explicit
timeouts on every call, the request id forwarded, and HTTP failures turned into
ProviderError / ProviderUnavailable with Lago's own error code kept.
"""

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from typing import Any

import jwt
import requests
from django.conf import settings
from django.core.cache import cache

from billing.providers.base import (
    CustomerData,
    ProviderError,
    ProviderUnavailable,
    RemoteObject,
    WebhookSignatureError,
)
from core.context import get_request_id

logger = logging.getLogger(__name__)
PROVIDER = "lago"
CONNECT_TIMEOUT = 3.0
_local = threading.local()


def _session() -> requests.Session:
    # One session per thread: connection reuse without sharing a Session across threads.
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def _url(path: str) -> str:
    if not settings.LAGO_API_URL:
        raise ProviderError(PROVIDER, "LAGO_API_URL is not set", code="not_configured")
    return f"{settings.LAGO_API_URL.rstrip('/')}/api/v1/{path.lstrip('/')}"


def request(method: str, path: str, *, body: Any = None, params: Any = None) -> dict[str, Any]:
    headers = {
        "Authorization": f"Bearer {settings.LAGO_API_KEY}",
        "Accept": "application/json",
        "X-Request-ID": get_request_id() or "",
    }
    try:
        response = _session().request(
            method,
            _url(path),
            json=body,
            params=params,
            headers=headers,
            timeout=(CONNECT_TIMEOUT, settings.LAGO_TIMEOUT_SECONDS),
        )
    except requests.Timeout as exc:
        raise ProviderUnavailable(PROVIDER, f"timeout on {method} {path}", code="timeout") from exc
    except requests.RequestException as exc:
        raise ProviderUnavailable(
            PROVIDER, f"{exc.__class__.__name__} on {method} {path}", code="network_error"
        ) from exc
    logger.info(
        "lago call",
        extra={"method": method, "path": path, "status": response.status_code},
    )
    if response.status_code < 400:
        return response.json() if response.content else {}
    body = _json_or_empty(response)
    code = body.get("code") or f"http_{response.status_code}"
    message = f"{method} {path} -> {response.status_code} {code}"
    if body.get("error_details"):
        message += f" {body['error_details']}"
    if response.status_code == 429:
        raise ProviderUnavailable(
            PROVIDER,
            message,
            code="rate_limited",
            http_status=429,
            retry_after=_retry_after(response),
        )
    if response.status_code >= 500:
        raise ProviderUnavailable(PROVIDER, message, code=code, http_status=response.status_code)
    error = ProviderError(PROVIDER, message, code=code, http_status=response.status_code)
    error.details = body.get("error_details") or {}
    raise error


def _json_or_empty(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(response: requests.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def customer_upsert(*, data: CustomerData) -> RemoteObject:
    """`POST /customers` creates or updates by external_id, so a retry is harmless."""
    customer: dict[str, Any] = {
        "external_id": data.external_id,
        "name": data.name or None,
        "email": data.email or None,
        "currency": data.currency or None,
        "country": data.country or None,
        "address_line1": data.address_line1 or None,
        "city": data.city or None,
        "zipcode": data.zipcode or None,
        "state": data.state or None,
        "tax_identification_number": data.tax_id or None,
    }
    body = request("POST", "customers", body={"customer": customer})
    remote = body["customer"]
    return RemoteObject(PROVIDER, remote["lago_id"], remote)


# --- Webhooks --------------------------------------------------------------------------
PUBLIC_KEY_CACHE_KEY = "lago:webhook-public-key"
PUBLIC_KEY_TTL_SECONDS = 24 * 3600
# After a JWT fails with the cached key, look for a rotated key at most this often.
PUBLIC_KEY_REFRESH_SECONDS = 60
_public_key_memo: dict[str, Any] = {}


def verify_webhook(*, payload: bytes, headers: Any) -> dict[str, Any]:
    """Check a Lago webhook's signature (`hmac` or `jwt`) and return its JSON body.

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
    except ValueError as exc:
        raise WebhookSignatureError("signed body is not JSON") from exc
    if not isinstance(body, dict) or not body.get("webhook_type"):
        raise WebhookSignatureError("signed body is not a Lago webhook")
    return body


def _verify_hmac(payload: bytes, signature: str) -> None:
    if not settings.LAGO_WEBHOOK_HMAC_KEY:
        raise WebhookSignatureError("LAGO_WEBHOOK_HMAC_KEY is not set")
    digest = hmac.new(settings.LAGO_WEBHOOK_HMAC_KEY.encode(), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(base64.b64encode(digest).decode(), signature.strip()):
        raise WebhookSignatureError("HMAC signature mismatch")


def _verify_jwt(payload: bytes, token: str) -> None:
    try:
        claims = _decode_jwt(token, _public_key(refresh=False))
    except jwt.InvalidSignatureError:
        # Lago may have rotated its key: fetch it again (rate-limited) and retry once.
        key = _public_key(refresh=True)
        try:
            claims = _decode_jwt(token, key)
        except jwt.PyJWTError as exc:
            raise WebhookSignatureError(f"JWT rejected: {exc.__class__.__name__}") from exc
    except jwt.PyJWTError as exc:
        raise WebhookSignatureError(f"JWT rejected: {exc.__class__.__name__}") from exc
    if claims.get("data") != payload.decode("utf-8", errors="replace"):
        raise WebhookSignatureError("JWT data claim does not match the body")


def _decode_jwt(token: str, key: str) -> dict[str, Any]:
    return jwt.decode(token, key, algorithms=["RS256"], options={"require": ["data"]})


def _public_key(*, refresh: bool) -> str:
    """Lago's webhook public key (PEM), cached in the cache and in this process."""
    now = time.monotonic()
    if not refresh:
        pem = _public_key_memo.get("pem") or cache.get(PUBLIC_KEY_CACHE_KEY)
        if pem:
            _public_key_memo["pem"] = pem
            return pem
    elif now - _public_key_memo.get("fetched_at", -1e9) < PUBLIC_KEY_REFRESH_SECONDS:
        return _public_key_memo["pem"]
    try:
        body = request("GET", "webhooks/json_public_key")
        pem = base64.b64decode(body["webhook"]["public_key"]).decode()
    except (ProviderError, KeyError, ValueError) as exc:
        raise WebhookSignatureError(f"cannot fetch Lago's public key: {exc}") from exc
    _public_key_memo.update(pem=pem, fetched_at=now)
    cache.set(PUBLIC_KEY_CACHE_KEY, pem, PUBLIC_KEY_TTL_SECONDS)
    return pem


# --- Metrics, plans, subscriptions -----------------------------------------------------
AGGREGATIONS = {
    "count": "count_agg",
    "sum": "sum_agg",
    "max": "max_agg",
    "unique_count": "unique_count_agg",
    "latest": "latest_agg",
}


def metric_upsert(
    *, code: str, name: str, aggregation: str, field_name: str, description: str, exists: bool
) -> dict[str, Any]:
    metric: dict[str, Any] = {
        "name": name,
        "code": code,
        "aggregation_type": AGGREGATIONS[aggregation],
        "description": description or None,
    }
    if field_name:
        metric["field_name"] = field_name
    if exists:
        return request("PUT", f"billable_metrics/{code}", body={"billable_metric": metric})[
            "billable_metric"
        ]
    try:
        return request("POST", "billable_metrics", body={"billable_metric": metric})[
            "billable_metric"
        ]
    except ProviderError as exc:
        if exc.http_status != 422:
            raise
        # Created by an earlier attempt whose answer we lost: update it instead.
        return request("PUT", f"billable_metrics/{code}", body={"billable_metric": metric})[
            "billable_metric"
        ]


def plan_upsert(*, plan: dict[str, Any], exists: bool) -> dict[str, Any]:
    if exists:
        return request("PUT", f"plans/{plan['code']}", body={"plan": plan})["plan"]
    try:
        return request("POST", "plans", body={"plan": plan})["plan"]
    except ProviderError as exc:
        if exc.http_status != 422:
            raise
        return request("PUT", f"plans/{plan['code']}", body={"plan": plan})["plan"]


def subscription_get(*, external_id: str, status: str = "active") -> dict[str, Any] | None:
    try:
        return request("GET", f"subscriptions/{external_id}", params={"status": status})[
            "subscription"
        ]
    except ProviderError as exc:
        if exc.http_status == 404:
            return None
        raise


def subscription_create(*, subscription: dict[str, Any]) -> dict[str, Any]:
    """Creates, or changes the plan of, the subscription with this external_id (Lago
    decides upgrade or downgrade itself, by the plans' yearly amounts, as we do)."""
    return request("POST", "subscriptions", body={"subscription": subscription})["subscription"]


def subscription_update(*, external_id: str, subscription: dict[str, Any]) -> dict[str, Any]:
    """`PUT /subscriptions/{external_id}`: ending_at (a cancellation at period end),
    name, plan_overrides."""
    return request("PUT", f"subscriptions/{external_id}", body={"subscription": subscription})[
        "subscription"
    ]


def subscription_terminate(*, external_id: str, pending: bool, invoice: bool) -> dict[str, Any]:
    params = {
        # Unused prepaid time is credited, and usage so far invoiced, as a cancellation now
        # implies; a pending subscription has neither.
        "on_termination_credit_note": "credit",
        "on_termination_invoice": "generate" if invoice else "skip",
    }
    if pending:
        params["status"] = "pending"
    return request("DELETE", f"subscriptions/{external_id}", params=params)["subscription"]


# --- Usage events ----------------------------------------------------------------------
BATCH_LIMIT = 100  # Lago's documented maximum per /events/batch


def events_batch(*, events: list[dict[str, Any]]) -> dict[str, dict]:
    """Send up to 100 events. Returns {} when Lago stored them all, else Lago's per-index
    errors (then Lago stored none: a batch is all or nothing)."""
    try:
        request("POST", "events/batch", body={"events": events})
    except ProviderError as exc:
        details = getattr(exc, "details", None)
        if (
            exc.http_status == 422
            and isinstance(details, dict)
            and all(key.isdigit() for key in details)
        ):
            return details
        raise
    return {}


# --- Invoices (Lago as the engine of record) -----------------------------------------------
def invoices_page(*, page: int, per_page: int = 100) -> tuple[list[dict[str, Any]], int | None]:
    """One page of invoices, newest first, and the next page's number (None at the end)."""
    body = request("GET", "invoices", params={"page": page, "per_page": per_page})
    return body["invoices"], (body.get("meta") or {}).get("next_page")


def invoice_get(*, lago_id: str) -> dict[str, Any]:
    return request("GET", f"invoices/{lago_id}")["invoice"]


def invoice_payment_status_update(*, lago_id: str, payment_status: str) -> dict[str, Any]:
    """Report a payment collected outside Lago (through our Stripe)."""
    return request(
        "PUT", f"invoices/{lago_id}", body={"invoice": {"payment_status": payment_status}}
    )["invoice"]


def invoice_preview(*, customer_external_id: str, subscription_external_id: str) -> dict[str, Any]:
    body = {
        "customer": {"external_id": customer_external_id},
        "subscriptions": {"external_ids": [subscription_external_id]},
    }
    return request("POST", "invoices/preview", body=body)["invoice"]


def invoice_finalize(*, lago_id: str) -> dict[str, Any]:
    return request("PUT", f"invoices/{lago_id}/finalize")["invoice"]


def invoice_void(*, lago_id: str) -> dict[str, Any]:
    return request("POST", f"invoices/{lago_id}/void")["invoice"]
