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
            error.status_code = 422
            return error
        return super().convert_known_exceptions(exc)
