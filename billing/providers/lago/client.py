"""The HTTP client every Lago call goes through, and the reading of Lago's field formats.

A small client over a `requests.Session` (see PROVIDERS.md on the official client): explicit
timeouts on every call, the request id forwarded, and HTTP failures turned into
ProviderError / ProviderUnavailable with Lago's own error code kept.
"""

import logging
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from django.utils.dateparse import parse_datetime

from billing.providers.base import ProviderError, ProviderUnavailable
from billing.providers.inline import is_inline
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


def segment(value: str) -> str:
    """An identifier as one URL path segment, every reserved character percent-encoded.

    Every id put into a Lago path goes through here: unencoded, `victim?x` made
    `DELETE /subscriptions/victim` (the rest a query string), and `a/b` another path.
    "", "." and ".." cannot name an object (a client may resolve them as dot segments).
    """
    if value in ("", ".", ".."):
        raise ValueError(f"{value!r} cannot be a URL path segment")
    return quote(value, safe="")


def _url(path: str) -> str:
    if not settings.LAGO_API_URL:
        raise ProviderError(PROVIDER, "LAGO_API_URL is not set", code="not_configured")
    return f"{settings.LAGO_API_URL.rstrip('/')}/api/v1/{path.lstrip('/')}"


def _timeout() -> tuple[float, float]:
    """(connect, read): inside an HTTP request LAGO_REQUEST_TIMEOUT_SECONDS bounds both."""
    if is_inline():
        short = settings.LAGO_REQUEST_TIMEOUT_SECONDS
        return (min(CONNECT_TIMEOUT, short), short)
    return (CONNECT_TIMEOUT, settings.LAGO_TIMEOUT_SECONDS)


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
            timeout=_timeout(),
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


# --- Lago's formats ----------------------------------------------------------------------
def malformed(what: str) -> ProviderError:
    """Lago sent something we cannot read: retrying the same read will not help."""
    return ProviderError(PROVIDER, f"malformed {what}", code="malformed")


def object_in(body: Any, key: str) -> dict[str, Any]:
    """The object an answer or a webhook wraps under `key` (`{"invoice": {...}}`)."""
    obj = body.get(key) if isinstance(body, dict) else None
    if not isinstance(obj, dict):
        raise malformed(f"{key}: no object")
    return obj


def lago_id_of(obj: dict[str, Any], what: str) -> str:
    lago_id = obj.get("lago_id")
    if not lago_id:
        raise malformed(f"{what}: no lago_id")
    return str(lago_id)


def as_lago_time(moment: datetime | None) -> datetime | None:
    """A moment as Lago holds it (UTC, whole seconds): compare ours with Lago's this way."""
    return moment.astimezone(UTC).replace(microsecond=0) if moment else None


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def time_of(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def date_of(value: Any, what: str) -> date | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value)).date()
    except ValueError as exc:
        raise malformed(what) from exc


def end_of_period(value: Any) -> datetime | None:
    """Lago shows a period's end as its last second; ours are half-open."""
    end = time_of(value)
    return end + timedelta(seconds=1) if end else None


def int_of(value: Any, what: str) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError) as exc:
        raise malformed(what) from exc


def decimal_of(value: Any, what: str) -> Decimal:
    # Lago sends quantities as strings ("1.5") to keep their precision.
    try:
        return Decimal(str(value or 0))
    except InvalidOperation as exc:
        raise malformed(what) from exc


def text_of(value: Any) -> str:
    return str(value) if value is not None else ""
