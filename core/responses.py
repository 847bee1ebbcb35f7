"""The API's error shape for answers given outside DRF (middleware, Django's handlers,
webhook receivers), so that every error a caller sees has one shape (shared/API.md)."""

from django.http import JsonResponse


def error_response(
    status: int, code: str, detail: str, *, kind: str = "client_error", attr: str | None = None
) -> JsonResponse:
    return JsonResponse(
        {"type": kind, "errors": [{"code": code, "detail": detail, "attr": attr}]},
        status=status,
    )
