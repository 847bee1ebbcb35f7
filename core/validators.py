import json
from typing import Any

from rest_framework import serializers


def json_storable(value: Any) -> Any:
    """PostgreSQL's jsonb cannot hold a NUL character; refuse it as bad input (not a 500)."""
    if "\\u0000" in json.dumps(value):
        raise serializers.ValidationError("Must not contain NUL characters.")
    return value
