"""The API's JSON parser: orjson, bounded in size, with the standard library behind it
for the inputs orjson would read inexactly.

DRF reads the body from the stream itself, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE check
(which guards only `request.body`), and lets RecursionError from deeply nested JSON escape
as a 500. Both are the caller's mistake, so both answer a 4xx. So does a number no double
holds (`1e999`): read as infinity it would be stored as JSON no database takes back.
"""

import json
import re
from typing import Any

import orjson
from django.conf import settings
from rest_framework import exceptions, parsers, status


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


# orjson reads an integer past 64 bits as a float, which would change a caller's number
# (an id in `properties`) without a word. A run of 19 digits is where that can start; such
# bodies take the exact, slower parser. A digit run inside a string only costs that time.
_LONG_DIGITS = re.compile(rb"\d{19}")


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge()
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        if encoding.lower().replace("-", "") == "utf8" and not _LONG_DIGITS.search(raw):
            try:
                # Refuses what the standard path below refuses: NaN and Infinity, numbers
                # past a double (`1e999`), lone surrogates, invalid UTF-8, nesting past
                # 1,024 levels.
                return orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise exceptions.ParseError(f"JSON parse error - {exc}") from exc
        return parse_exactly(raw, encoding)


def parse_exactly(raw: bytes, encoding: str) -> Any:
    """The standard library's parser, made as strict as orjson: integers of any length are
    kept exactly, and what is not JSON (or not storable) is a ParseError."""
    try:
        data = json.loads(
            raw.decode(encoding), parse_constant=_refuse_constant, parse_float=_finite_float
        )
        # A lone surrogate escape (`"\ud800"`) parses into a str that is not Unicode
        # text: it can be neither stored nor echoed back in an error (both failed, as
        # 500s). Encoding once finds any, at the cost of one pass over the body.
        json.dumps(data, ensure_ascii=False).encode()
    except RecursionError as exc:
        raise exceptions.ParseError("JSON parse error - nested too deeply.") from exc
    except UnicodeEncodeError as exc:
        raise exceptions.ParseError("JSON parse error - a string is not valid Unicode.") from exc
    except ValueError as exc:
        raise exceptions.ParseError(f"JSON parse error - {exc}") from exc
    return data


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (DRF's strict mode refuses them too).
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is too large for a double")
    return number
