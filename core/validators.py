"""The rules on what callers may store, written once as Django validators.

They sit on the model fields (so a service's `full_clean` and every admin form apply them)
and the API serializers use the same functions (DRF runs Django validators too), so the
API and the admin cannot drift apart.
"""

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from rest_framework import serializers

from core.iso import COUNTRIES, CURRENCIES
from core.limits import MAX_METADATA_KEYS


def json_storable(value: Any) -> Any:
    """PostgreSQL's jsonb cannot hold a NUL character; refuse it as bad input (not a 500)."""
    if "\\u0000" in json.dumps(value):
        raise ValidationError("Must not contain NUL characters.", code="invalid")
    return value


def validate_metadata(value: Any) -> None:
    """Free-form key/values kept for the caller: an object, storable, at most 50 keys."""
    if not isinstance(value, dict):
        raise ValidationError("Must be an object.", code="invalid")
    if len(value) > MAX_METADATA_KEYS:
        # Its own code: a form's JSONField would show its "invalid" message instead.
        raise ValidationError(f"At most {MAX_METADATA_KEYS} keys.", code="too_many_keys")
    json_storable(value)


def validate_currency(value: str) -> None:
    """An ISO 4217 code, upper case (blank is the field's business: `blank=`)."""
    if value and value not in CURRENCIES:
        raise ValidationError(f"'{value}' is not an ISO 4217 currency code.", code="invalid")


def validate_country(value: str) -> None:
    """An ISO 3166-1 alpha-2 code, upper case (blank is the field's business)."""
    if value and value not in COUNTRIES:
        raise ValidationError(f"'{value}' is not an ISO 3166-1 alpha-2 code.", code="invalid")


# The documented alphabet of external_id (README, "API notes"). Such an id is safe as a URL
# path segment, in logs and in provider URLs (which encode it all the same): no '/', '?',
# '#', '%', whitespace or control characters, and it never starts with '.' or '-'.
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,254}$"
EXTERNAL_ID_RULE = (
    "1 to 255 characters: letters, digits and . _ : @ -, starting with a letter or a digit."
)
validate_external_id = RegexValidator(EXTERNAL_ID_PATTERN, EXTERNAL_ID_RULE, code="invalid")


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
