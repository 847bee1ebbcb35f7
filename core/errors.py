"""Maps the exceptions of our own layers onto the API's one error shape."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_standardized_errors.handler import ExceptionHandler as BaseExceptionHandler
from rest_framework import exceptions
from rest_framework.fields import get_error_detail

from billing.providers.base import ProviderError, ProviderUnavailable
from core.exceptions import ServiceUnavailable


class ExceptionHandler(BaseExceptionHandler):
    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, DjangoValidationError):
            return exceptions.ValidationError(detail=get_error_detail(exc))
        if isinstance(exc, ProviderUnavailable):
            return ServiceUnavailable(f"{exc.provider} is unavailable; try again later.")
        if isinstance(exc, ProviderError):
            error = exceptions.ValidationError(
                detail={"non_field_errors": [exc.message]}, code=exc.code or "provider_error"
            )
            # A card refusal keeps Stripe's 402; any other refusal is about the request's
            # content (an unknown or unusable id), so 422 with the provider's code.
            error.status_code = 402 if exc.http_status == 402 else 422
            return error
        return super().convert_known_exceptions(exc)

    def report_exception(self, exc, response) -> None:
        # A provider outage is expected and answered (503, retry later): not a bug to report.
        if isinstance(exc, ServiceUnavailable):
            return
        super().report_exception(exc, response)
