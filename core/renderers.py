"""The API's JSON renderer: orjson, with DRF's encoder for what orjson does not know.

Output matches DRF's JSONRenderer (compact, UTF-8; dates, decimals and lazy strings
through DRF's encoder, so every answer keeps its format) at a fraction of the time. Data
orjson refuses (an integer past 64 bits) and indented output go to DRF's renderer.
"""

from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer
from rest_framework.utils.encoders import JSONEncoder

# Datetimes pass through to DRF's encoder: it writes UTC as `Z` and milliseconds, as the
# API always has.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_encoder = JSONEncoder()


def render_json(data: Any) -> bytes:
    """`data` as the API's JSON body."""
    if data is None:
        return b""
    try:
        return orjson.dumps(data, default=_encoder.default, option=_OPTIONS)
    except TypeError:
        return DRFJSONRenderer().render(data)


class JSONRenderer(DRFJSONRenderer):
    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if self.get_indent(accepted_media_type or "", renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        return render_json(data)
