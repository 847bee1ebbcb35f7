"""Domain errors: what a service refuses, with a stable `code`, and nothing of HTTP.

Services raise these; `core.errors` is the one place that turns them into the API's error
shape (status by kind, `code` kept) and into admin messages. A provider's refusal is a
domain error too, so a caller never needs to know which SDK raised it.
"""

from typing import Any


class DomainError(Exception):
    """A request the domain refuses. `code` is machine-readable and part of the API."""

    default_code = "invalid"
    default_detail = "The request cannot be carried out."

    def __init__(self, detail: str | None = None, code: str | None = None, attr: str | None = None):
        self.detail = detail or self.default_detail
        self.code = code or self.default_code
        self.attr = attr
        super().__init__(self.detail)

    @property
    def message(self) -> str:
        return self.detail


class Conflict(DomainError):
    """The current state forbids it (an illegal transition, a duplicate): 409 in the API."""

    default_code = "conflict"
    default_detail = "The request conflicts with the current state."


class UnprocessableEntity(DomainError):
    """Well-formed, but the domain cannot act on it (a closed period, an unknown code)."""

    default_code = "unprocessable"
    default_detail = "The request cannot be processed."


class NotFound(DomainError):
    default_code = "not_found"
    default_detail = "Not found."


class ServiceUnavailable(DomainError):
    """A dependency is down; the same request may succeed later (503, not reported)."""

    default_code = "provider_unavailable"
    default_detail = "A provider is unavailable; try again later."


class ProviderError(DomainError):
    """The provider refused the request; retrying the same request will not help."""

    retryable = False
    default_code = "provider_error"

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        user_message: str | None = None,
    ):
        super().__init__(message, code=code or self.default_code)
        self.args = (f"{provider}: {message}",)
        self.provider = provider
        self.provider_code = code
        self.http_status = http_status
        # A sentence the provider wrote for the end user (a card refusal's), safe to show
        # an API caller; `detail` is for staff and logs.
        self.user_message = user_message
        # The provider's own error details (Lago's `error_details`), when it gave any.
        self.details: dict[str, Any] = {}

    def __str__(self) -> str:
        return f"{self.provider}: {self.detail}"


class ProviderUnavailable(ProviderError):
    """Timeout, network error, rate limit or 5xx: the same request may succeed later."""

    retryable = True
    default_code = "provider_unavailable"

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        retry_after: float | None = None,
        code: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(provider, message, code=code, http_status=http_status)
        self.retry_after = retry_after


def error_message(exc: Exception) -> str:
    """The sentence staff see for a refusal (admin messages)."""
    if isinstance(exc, DomainError):
        return exc.detail
    messages = getattr(exc, "messages", None)  # Django's ValidationError
    if messages:
        return "; ".join(messages)
    return str(exc)
