import re

from django.conf import settings

from core.context import new_request_id, request_id_var
from core.responses import error_response

# Accept a caller's id only if it is short and plain, so it is safe to log and echo.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Takes `X-Request-ID` (or makes one), exposes it to logs and tasks, echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else new_request_id()
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class BadRequestGuardMiddleware:
    """Refuses, before any view or URL pattern sees them, requests no view can serve:

    - a body declared larger than DATA_UPLOAD_MAX_MEMORY_SIZE (413): nothing reads it;
    - a NUL character in the path or the query string (400): PostgreSQL cannot hold NUL in
      text, so every lookup or filter with one failed with a database error (a 500).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "invalid_content_length", "Invalid Content-Length.")
        if limit is not None and length > limit:
            return error_response(
                413, "payload_too_large", f"The request body exceeds {limit} bytes."
            )
        if "\x00" in request.path or _query_has_nul(request):
            return error_response(400, "invalid_character", "NUL characters are not allowed.")
        return self.get_response(request)


def _query_has_nul(request) -> bool:
    return any("\x00" in part for key, values in request.GET.lists() for part in (key, *values))
