"""Fields encrypted at rest with the keys of FIELD_ENCRYPTION_KEYS (newest first).

MultiFernet decrypts with any listed key and encrypts with the first, so rotation is:
prepend a new key, deploy, run `manage.py rotate_encryption_keys`, then drop the old key.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: encrypted fields need a key")
    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


class EncryptedTextField(models.TextField):
    """A text value stored as a Fernet token. Not searchable or orderable, by design."""

    description = "Text encrypted at rest"

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return fernet().encrypt(value.encode()).decode()

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        try:
            return fernet().decrypt(value.encode()).decode()
        except InvalidToken as exc:
            raise ImproperlyConfigured(
                f"{self.model.__name__}.{self.name} cannot be decrypted with FIELD_ENCRYPTION_KEYS"
            ) from exc


def rotate_token(token: str) -> str:
    """Re-encrypt one stored token with the newest key."""
    return fernet().rotate(token.encode()).decode()
