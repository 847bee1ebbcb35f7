"""How the OpenAPI schema (drf-spectacular, `/api/schema/`) documents every operation.

Views say what is theirs: a summary and a description written for API users, the
success response, and the domain error codes they can answer (`codes(...)` under a status
in `extend_schema(responses=...)`). Everything that follows from the plumbing is added
here, once, so that no view can forget it:

- every error response, in the one error shape (`Error`), with the codes it may carry:
  400 (validation, unreadable body), 401 (key), 403 (read-only key on a write), 404 (an
  unknown object in the path, a stale cursor), 409/422 (the view's codes, and those of
  `Idempotency-Key` on POST), 429 (throttled), and a `default` for the rest;
- the `Idempotency-Key` request header on every operation that honours it (POST on a
  `TransactionalIdempotentMixin` view) and the `Idempotent-Replayed` answer header;
- descriptions come from `extend_schema` and `extend_schema_serializer` only
  (`DISABLE_DOCSTRING_DESCRIPTIONS`): a docstring is a note for developers and never
  becomes API documentation.
"""

import re
from typing import Any

from django.conf import settings
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    Direction,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema_serializer,
)
from rest_framework import serializers

from core.idempotency import MAX_KEY_LENGTH
from core.views import IDEMPOTENCY_HEADER, TransactionalIdempotentMixin


class ErrorItemSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="Machine-readable and stable: branch on this (e.g. `customer_exists`)."
    )
    detail = serializers.CharField(
        help_text="A sentence for people, naming the value at fault. Its wording may change."
    )
    attr = serializers.CharField(
        allow_null=True,
        help_text="The field at fault, as a dotted path into the request body or the query "
        "string (`external_id`, `charges.0.properties`, `properties.tokens`); null when "
        "the error is about the request as a whole.",
    )


@extend_schema_serializer(
    description="Every error answer of the API has this shape. `type` is `validation_error` "
    "when the request's content is at fault (each error's `attr` names the field), "
    "`client_error` for any other refusal, `server_error` for a fault of ours."
)
class ErrorSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["validation_error", "client_error", "server_error"])
    errors = ErrorItemSerializer(many=True)


class ErrorCodes(OpenApiResponse):
    """An error status a view documents: {code: when it is answered}."""

    def __init__(self, meanings: dict[str, str]) -> None:
        super().__init__(response=ErrorSerializer)
        self.meanings = meanings


def codes(**meanings: str) -> ErrorCodes:
    """The domain codes an operation may answer under one status, each with its meaning:
    `responses={409: codes(customer_exists="A customer with this external_id exists.")}`.
    A `responses` holding only error codes keeps the success response drf-spectacular
    derives from the view."""
    return ErrorCodes(meanings=meanings)


# --- What every operation may answer ------------------------------------------------------
SUCCESS_TITLES = {"200": "OK.", "201": "Created.", "204": "Done; no body."}
STATUS_TITLES = {
    400: "Bad request: nothing was done.",
    401: "Authentication failed.",
    402: "The card was refused; nothing was stored.",
    403: "Forbidden.",
    404: "Not found.",
    409: "Conflict with the current state: nothing was changed.",
    422: "Well-formed, but it cannot be carried out: nothing was changed.",
    429: "Too many requests.",
    503: "A provider is unavailable: nothing was changed; retry later.",
}
UNAUTHENTICATED = {
    "not_authenticated": "No `Authorization: Bearer <api key>` header.",
    "authentication_failed": "The key is unknown or revoked, or the header is malformed.",
}
READ_ONLY_KEY = {"permission_denied": "The API key is read-only: it may not write."}
THROTTLED = {"throttled": "Past the API key's request rate; `Retry-After` says when to try again."}
IDEMPOTENCY_CONFLICT = {
    "idempotency_key_in_use": "A request with this `Idempotency-Key` is still running: "
    "retry once it has answered.",
}
KEPT_HOURS = settings.IDEMPOTENCY_KEY_TTL_HOURS
IDEMPOTENCY_UNPROCESSABLE = {
    "idempotency_key_reused": f"This `Idempotency-Key` was used, within {KEPT_HOURS} hours, "
    "with another body or path.",
    "invalid_idempotency_key": f"The `Idempotency-Key` is empty or longer than "
    f"{MAX_KEY_LENGTH} characters.",
}
# A key that is not a code (`snake_case`) labels a bullet of prose.
FIELD_ERRORS, QUERY_ERRORS = "(field errors)", "(query errors)"
CODE = re.compile(r"[a-z][a-z0-9_]*")
DEFAULT_ERROR = (
    "Any other error, in the same shape: 405 `method_not_allowed`, 406 `not_acceptable`, "
    "413 `payload_too_large`, 415 `unsupported_media_type` (send `application/json`), "
    "500 `error`."
)
IDEMPOTENCY_DESCRIPTION = (
    f"A key of your choosing (1 to {MAX_KEY_LENGTH} characters; a UUID is typical) that "
    f"makes retrying this request safe. Sent again within {KEPT_HOURS} hours with the same "
    "body, it "
    "replays the first answer (status and body, with `Idempotent-Replayed: true`) and does "
    "nothing twice; with another body: 422 `idempotency_key_reused`; while the first "
    "request is still running: 409 `idempotency_key_in_use`. Keys are scoped to your API "
    "key. Answers given before any work (400, 401, 403, 404, 429) and server errors are "
    "not kept: fix the request and retry with the same key."
)


def honours_idempotency_key(view: Any, method: str) -> bool:
    return method == "POST" and isinstance(view, TransactionalIdempotentMixin)


class AutoSchema(SpectacularAutoSchema):
    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        if honours_idempotency_key(self.view, self.method):
            parameters += [
                OpenApiParameter(
                    IDEMPOTENCY_HEADER,
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    description=IDEMPOTENCY_DESCRIPTION,
                ),
                OpenApiParameter(
                    "Idempotent-Replayed",
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    enum=["true"],
                    description="Present when this answer is the replay of an earlier "
                    "request with the same `Idempotency-Key`.",
                    # What is kept for replay: successes and the domain's refusals.
                    response=[200, 201, 402, 409, 422],
                ),
            ]
        if self.view.get_throttles():
            parameters.append(
                OpenApiParameter(
                    "Retry-After",
                    OpenApiTypes.INT,
                    OpenApiParameter.HEADER,
                    description="Seconds to wait before the next request.",
                    response=[429],
                )
            )
        return parameters

    def _get_response_bodies(self, direction: Direction = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction=direction)
        if direction != "response":
            return responses
        declared = self.get_response_serializers()
        declared_codes: dict[str, ErrorCodes] = {}
        if isinstance(declared, dict):
            declared_codes = {
                str(status): value
                for status, value in declared.items()
                if isinstance(value, ErrorCodes)
            }
            if len(declared_codes) == len(declared):
                # Only errors were declared: the success answer is the view's own.
                responses.update(self._default_success())
        for status, meanings in self._error_codes(declared_codes).items():
            description = _describe(status, meanings)
            responses[str(status)] = self._get_response_for_code(
                OpenApiResponse(ErrorSerializer, description=description), str(status)
            )
        for code, response in responses.items():
            if not response.get("description"):
                response["description"] = SUCCESS_TITLES.get(code, "")
        responses["default"] = self._get_response_for_code(
            OpenApiResponse(ErrorSerializer, description=DEFAULT_ERROR), "default"
        )
        return dict(sorted(responses.items()))

    def _default_success(self) -> dict[str, Any]:
        serializer = self._get_serializer()
        if self.method == "DELETE":
            return {"204": {"description": "No response body"}}
        status = "201" if self._is_create_operation() else "200"
        return {status: self._get_response_for_code(serializer, status)}

    def _error_codes(self, declared: dict[str, ErrorCodes]) -> dict[int, dict[str, str]]:
        """{status: {code: meaning}} this operation may answer, declared and inherent."""
        parameters = self._get_parameters()
        in_path = [p["name"] for p in parameters if p["in"] == "path"]
        in_query = [p["name"] for p in parameters if p["in"] == "query"]
        writes = self.method in ("POST", "PUT", "PATCH", "DELETE")
        has_body = self.method in ("POST", "PUT", "PATCH") and self._get_request_body()
        found: dict[int, dict[str, str]] = {400: _bad_request(bool(has_body), in_query)}
        if self.get_auth():
            found[401] = dict(UNAUTHENTICATED)
            if writes:
                found[403] = dict(READ_ONLY_KEY)
        not_found = {}
        if in_path:
            not_found["not_found"] = _not_found_meaning(in_path)
        elif "cursor" in in_query:
            not_found["not_found"] = "The `cursor` is not one this list gave (`Invalid cursor`)."
        if in_path and "cursor" in in_query:
            not_found["not_found"] += " Also for a `cursor` this list did not give."
        if not_found:
            found[404] = not_found
        if honours_idempotency_key(self.view, self.method):
            found.setdefault(409, {}).update(IDEMPOTENCY_CONFLICT)
            found.setdefault(422, {}).update(IDEMPOTENCY_UNPROCESSABLE)
        for status, response in declared.items():
            # The operation's own codes first: they are what its callers meet most.
            found[int(status)] = {**response.meanings, **found.get(int(status), {})}
        if self.view.get_throttles():
            found[429] = dict(THROTTLED)
        return found


def _bad_request(has_body: bool, in_query: list[str]) -> dict[str, str]:
    meanings = {}
    if has_body:
        meanings[FIELD_ERRORS] = (
            "`type` is `validation_error`; each error's `attr` names the body field at "
            "fault and its `code` says why (`required`, `invalid`, `blank`, `max_length`, "
            "`does_not_exist`, `invalid_choice`, …)."
        )
        meanings["parse_error"] = "The body is not JSON (or is nested too deeply)."
    filters = [name for name in in_query if name not in ("cursor", "page_size")]
    if filters:
        meanings[QUERY_ERRORS] = (
            "`type` is `validation_error`; `attr` names the query parameter at fault ("
            + ", ".join(f"`{name}`" for name in filters)
            + ")."
        )
    meanings["invalid_character"] = "A NUL character in the URL or the query string."
    meanings["invalid_content_length"] = "The `Content-Length` header is not a number."
    meanings["bad_request"] = "The request cannot be read (a `Host` this service does not serve)."
    return meanings


def _not_found_meaning(in_path: list[str]) -> str:
    names = ", ".join(f"`{name}`" for name in in_path)
    return f"No object matches {names} in the path; `detail` names the value."


def _describe(status: int, meanings: dict[str, str]) -> str:
    lines = [STATUS_TITLES.get(status, ""), ""]
    for code, meaning in meanings.items():
        lines.append(f"- `{code}`: {meaning}" if CODE.fullmatch(code) else f"- {meaning}")
    return "\n".join(lines).strip()
