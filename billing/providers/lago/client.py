"""The HTTP client every Lago call goes through.

A small client over a `requests.Session` (see PROVIDERS.md on the official client): explicit
timeouts on every call, the request id forwarded, and HTTP failures turned into
ProviderError / ProviderUnavailable with Lago's own error code kept.
"""

import logging
import threading
from typing import Any

import requests
from django.conf import settings

from billing.providers.base import ProviderError, ProviderUnavailable
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
