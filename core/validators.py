import json
from typing import Any

from rest_framework import serializers


def json_storable(value: Any) -> Any:
    """PostgreSQL's jsonb cannot hold a NUL character; refuse it as bad input (not a 500)."""
    if "\\u0000" in json.dumps(value):
        raise serializers.ValidationError("Must not contain NUL characters.")
    return value


# The documented alphabet of external_id (README, "API notes"). Such an id is safe as a URL
# path segment, in logs and in provider URLs (which encode it all the same): no '/', '?',
# '#', '%', whitespace or control characters, and it never starts with '.' or '-'.
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,254}$"
EXTERNAL_ID_RULE = (
    "1 to 255 characters: letters, digits and . _ : @ -, starting with a letter or a digit."
)


def external_id_field(**kwargs: Any) -> serializers.RegexField:
    """An `external_id` in the documented alphabet (a RegexField, so the OpenAPI schema
    carries the pattern)."""
    return serializers.RegexField(
        EXTERNAL_ID_PATTERN,
        max_length=255,
        error_messages={"invalid": EXTERNAL_ID_RULE},
        help_text=EXTERNAL_ID_RULE,
        **kwargs,
    )


class SlugRelatedField(serializers.SlugRelatedField):
    """DRF's, but a slug with NUL is "no such object" rather than a database error
    (PostgreSQL text cannot hold NUL; DRF's CharField refuses it, its relations do not),
    and "no such object" names the kind of object: `No plan with code 'pro'.`, not DRF's
    `Object with code=pro does not exist.`"""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value="(contains NUL)")
        return super().to_internal_value(data)

    def fail(self, key: str, **kwargs: Any) -> None:
        if key == "does_not_exist":
            kind = self.get_queryset().model._meta.verbose_name
            raise serializers.ValidationError(
                f"No {kind} with {kwargs['slug_name']} '{kwargs['value']}'.", code=key
            )
        super().fail(key, **kwargs)
