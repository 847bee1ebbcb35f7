"""The service's own OpenAPI document, generated as `/api/schema/` serves it, and a client
that holds every answer it gets to that document: a status the operation does not
document, or an error code its description does not list, fails the test."""

import json
import re
from functools import cache
from typing import Any

from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

METHODS = ("get", "post", "put", "patch", "delete")


def generate_schema() -> tuple[dict[str, Any], list[str]]:
    """(the document as JSON would carry it, drf-spectacular's warnings and errors)."""
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        schema = SchemaGenerator().get_schema(request=None, public=True)
    problems = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    return json.loads(OpenApiJsonRenderer().render(schema)), problems


@cache
def api_schema() -> dict[str, Any]:
    return generate_schema()[0]


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """[(METHOD, path template, operation)] of the document."""
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def operation_for(method: str, url: str) -> dict[str, Any]:
    path = url.split("?", 1)[0]
    for op_method, template, operation in operations(api_schema()):
        pattern = "[^/]+".join(re.escape(part) for part in re.split(r"\{[^}]+\}", template))
        if op_method == method and re.fullmatch(pattern, path):
            return operation
    raise AssertionError(f"{method} {path} is no operation of the OpenAPI document")


def success_statuses(operation: dict[str, Any]) -> set[int]:
    return {int(status) for status in operation["responses"] if status.startswith("2")}


def assert_documented(method: str, url: str, response: Any) -> str:
    """The answer is one the operation documents; returns its operationId."""
    operation = operation_for(method, url)
    name = operation["operationId"]
    status = str(response.status_code)
    responses = operation["responses"]
    # A status not listed on its own is documented by `default` when that names it.
    listed = status in responses or f"{status} `" in responses["default"]["description"]
    assert listed, (
        f"{name} answered {status}, which it does not document: {response.content[:300]!r}"
    )
    if response.status_code >= 400:
        assert response["Content-Type"] == "application/json", (name, response["Content-Type"])
        body = response.json()
        documented = responses.get(status, responses["default"])["description"]
        for error in body["errors"]:
            field_error = status == "400" and body["type"] == "validation_error"
            assert field_error or f"`{error['code']}`" in documented, (
                f"{name} answered {status} `{error['code']}`, which its description does "
                f"not list: {documented!r}"
            )
    return name


class DocumentedClient:
    """Wraps a test client: every answer is checked against the document, and the
    operations that answered with success are remembered (`succeeded`)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.succeeded: set[str] = set()

    def _call(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        response = getattr(self.client, method.lower())(url, *args, **kwargs)
        name = assert_documented(method, url, response)
        if response.status_code < 300:
            self.succeeded.add(name)
        return response

    def get(self, url: str, *args: Any, **kwargs: Any) -> Any:
        return self._call("GET", url, *args, **kwargs)

    def post(self, url: str, *args: Any, **kwargs: Any) -> Any:
        return self._call("POST", url, *args, **kwargs)

    def patch(self, url: str, *args: Any, **kwargs: Any) -> Any:
        return self._call("PATCH", url, *args, **kwargs)

    def delete(self, url: str, *args: Any, **kwargs: Any) -> Any:
        return self._call("DELETE", url, *args, **kwargs)
