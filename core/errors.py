"""The one mapping from our errors onto the API's error shape.

Domain errors (core.exceptions) carry a `code` and no HTTP: their kind decides the status
here, and nowhere else.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_standardized_errors.formatter import ExceptionFormatter as BaseExceptionFormatter
from drf_standardized_errors.handler import ExceptionHandler as BaseExceptionHandler
from drf_standardized_errors.types import Error
from rest_framework import exceptions, status
from rest_framework.fields import get_error_detail
from rest_framework.settings import api_settings

from core.exceptions import (
    Conflict,
    DomainError,
    NotFound,
    ProviderError,
    ProviderUnavailable,
    ServiceUnavailable,
    UnprocessableEntity,
)


class DomainAPIError(exceptions.APIException):
    def __init__(self, error: DomainError, status_code: int):
        self.status_code = status_code
        super().__init__(detail=error.detail, code=error.code)


def api_error(exc: DomainError) -> exceptions.APIException:
    """The API's answer to a domain error."""
    if isinstance(exc, ProviderUnavailable):
        unavailable = ServiceUnavailable(
            f"{exc.provider.capitalize()} is unavailable; try again later.",
            code="provider_unavailable",
        )
        return DomainAPIError(unavailable, status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, ServiceUnavailable):
        return DomainAPIError(exc, status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, ProviderError):
        # A card refusal keeps Stripe's 402; any other refusal is about the request's
        # content (an unknown or unusable id), so 422 with the provider's code. The
        # provider's own message is for staff and logs (it names SDK classes and paths);
        # the caller gets the sentence meant for a card holder, or one naming the code.
        code = exc.code or "provider_error"
        detail = exc.user_message or (
            f"{exc.provider.capitalize()} refused the request (its code: {code})."
        )
        refusal = UnprocessableEntity(detail, code=code)
        return DomainAPIError(refusal, 402 if exc.http_status == 402 else 422)
    if exc.attr:
        error = exceptions.ValidationError(detail={exc.attr: [exc.detail]}, code=exc.code)
        error.status_code = 409 if isinstance(exc, Conflict) else 422
        return error
    if isinstance(exc, Conflict):
        return DomainAPIError(exc, status.HTTP_409_CONFLICT)
    if isinstance(exc, NotFound):
        return DomainAPIError(exc, status.HTTP_404_NOT_FOUND)
    return DomainAPIError(exc, status.HTTP_422_UNPROCESSABLE_ENTITY)


class ExceptionFormatter(BaseExceptionFormatter):
    """`attr` is a field or null (shared/API.md): DRF's name for errors about the request
    as a whole, `non_field_errors`, is not a field, so it is null (or its parent, within
    a nested object: `charges.0`)."""

    def get_errors(self) -> list[Error]:
        return [
            Error(error.code, error.detail, _field_of(error.attr)) for error in super().get_errors()
        ]


def _field_of(attr: str | None) -> str | None:
    whole = api_settings.NON_FIELD_ERRORS_KEY
    if attr == whole:
        return None
    if attr and attr.endswith(f".{whole}"):
        return attr[: -len(whole) - 1]
    return attr


class ExceptionHandler(BaseExceptionHandler):
    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, DjangoValidationError):
            return exceptions.ValidationError(detail=get_error_detail(exc))
        if isinstance(exc, DomainError):
            return api_error(exc)
        return super().convert_known_exceptions(exc)

    def report_exception(self, exc, response) -> None:
        # A provider outage is expected and answered (503, retry later): not a bug to report.
        if isinstance(exc, DomainAPIError) and exc.status_code == 503:
            return
        super().report_exception(exc, response)
