"""Domain errors in the API's one error shape, with a specific `code` each."""

from rest_framework import status
from rest_framework.exceptions import APIException


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"

    def __init__(self, detail: str | None = None, code: str | None = None):
        super().__init__(detail=detail, code=code)


class UnprocessableEntity(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request cannot be processed."
    default_code = "unprocessable"

    def __init__(self, detail: str | None = None, code: str | None = None):
        super().__init__(detail=detail, code=code)


class ServiceUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A provider is unavailable; try again later."
    default_code = "provider_unavailable"
