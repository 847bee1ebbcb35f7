"""The API's JSON parser: DRF's, bounded in size and depth.

DRF reads the body from the stream itself, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE check
(which guards only `request.body`), and lets RecursionError from deeply nested JSON escape
as a 500. Both are the caller's mistake, so both answer a 4xx.
"""

import json
from typing import Any

from django.conf import settings
from rest_framework import exceptions, parsers, status


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge()
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(raw.decode(encoding), parse_constant=_refuse_constant)
            # A lone surrogate escape (`"\ud800"`) parses into a str that is not Unicode
            # text: it can be neither stored nor echoed back in an error (both failed, as
            # 500s). Encoding once finds any, at the cost of one pass over the body.
            json.dumps(data, ensure_ascii=False).encode()
        except RecursionError as exc:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from exc
        except UnicodeEncodeError as exc:
            raise exceptions.ParseError(
                "JSON parse error - a string is not valid Unicode."
            ) from exc
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from exc
        return data


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (DRF's strict mode refuses them too).
    raise ValueError(f"{name} is not valid JSON")
