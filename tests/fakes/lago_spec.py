"""Validation of FakeLago traffic against Lago's published OpenAPI spec.

The spec is parsed once per process (see `load_openapi`); the relaxations in
`_relax` are the only places where we deliberately accept more than the spec.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.paths.exceptions import PathError
from werkzeug.wrappers import Request, Response

# The spec's servers are https://api.getlago.com/api/v1 (and the EU host). A relative
# server keeps the /api/v1 prefix but matches whatever host:port the fake bound to.
SERVER_URL = "/api/v1"

_load_lock = threading.Lock()


def default_spec_path() -> Path:
    """`$LAGO_OPENAPI_SPEC`, else `<repo>/../shared/lago/openapi.yaml`."""
    env = os.environ.get("LAGO_OPENAPI_SPEC")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "lago" / "openapi.yaml"


def _walk(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _relax(spec: dict) -> dict:
    spec["servers"] = [{"url": SERVER_URL}]
    for schema in _walk(spec):
        # Event `properties` values are oneOf [string, integer, number]: an integer
        # matches both integer and number, so every integer value would be rejected.
        branches = schema.get("oneOf")
        if isinstance(branches, list):
            types = {b.get("type") for b in branches if isinstance(b, dict)}
            if {"integer", "number"} <= types:
                schema["anyOf"] = schema.pop("oneOf")
        # `type: [string, "null"]` with an enum that forgets null rejects the null
        # that the type allows and real Lago sends (e.g. a subscription's
        # on_termination_credit_note for pay-in-arrears plans).
        kind, enum = schema.get("type"), schema.get("enum")
        nullable = isinstance(kind, list) and "null" in kind
        if nullable and isinstance(enum, list) and None not in enum:
            enum.append(None)
        # Range bounds are documented as integers, but lago-api takes decimals (0.1):
        # Validators::RangeBoundsValidator compares BigDecimal(value.to_s), and its specs
        # (charges/validators/graduated_service_spec.rb "with decimal adjacent ranges",
        # charge_models/graduated_service_spec.rb) price ranges bounded at 0.1.
        properties = schema.get("properties")
        if isinstance(properties, dict) and {"from_value", "to_value"} <= set(properties):
            for key in ("from_value", "to_value"):
                bound = properties[key]
                if isinstance(bound, dict):
                    kind = bound.get("type")
                    if kind == "integer":
                        bound["type"] = "number"
                    elif isinstance(kind, list):
                        bound["type"] = ["number" if k == "integer" else k for k in kind]
    return spec


@functools.cache
def _load(resolved_path: str) -> OpenAPI:
    with open(resolved_path, "rb") as fh:
        # The C loader parses the 877 KB spec ~10x faster than the pure-Python one.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        spec = yaml.load(fh, Loader=loader)
    # Validating the spec document itself costs ~3 s and tells us nothing about our
    # client, so it is skipped; requests/responses are still checked against it.
    return OpenAPI.from_dict(_relax(spec), config=Config(spec_validator_cls=None))


def load_openapi(spec_path: str | Path) -> OpenAPI:
    """Parse (once per process and path) and return the relaxed spec."""
    resolved = str(Path(spec_path).resolve())
    with _load_lock:  # two fakes starting at once must not parse the spec twice
        return _load(resolved)


def _describe(exc: Exception) -> str:
    details = []
    cause = exc
    while cause is not None:
        for err in getattr(cause, "schema_errors", ()) or ():
            details.append(f"{err.json_path}: {err.message}")
        cause = cause.__cause__
    return "; ".join([str(exc).split(":")[0], *details]) if details else str(exc)


class SpecValidator:
    def __init__(self, spec_path: str | Path):
        self.openapi = load_openapi(spec_path)

    def check_request(self, request: Request) -> tuple[str | None, bool]:
        """Return (violation or None, whether the operation exists in the spec)."""
        try:
            self.openapi.validate_request(WerkzeugOpenAPIRequest(request))
        except PathError as exc:
            return str(exc), False
        except OpenAPIError as exc:
            return _describe(exc), True
        return None, True

    def check_response(self, request: Request, response: Response) -> str | None:
        try:
            self.openapi.validate_response(
                WerkzeugOpenAPIRequest(request), WerkzeugOpenAPIResponse(response)
            )
        except PathError:
            return None  # an unknown operation is reported on the request side
        except OpenAPIError as exc:
            return _describe(exc)
        return None
