import hashlib
import secrets
import uuid

from django.db import models
from django.utils import timezone

from core.encryption import EncryptedTextField


class TimestampedModel(models.Model):
    """`id`, `created_at`, `updated_at`: what every API object exposes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


KEY_PREFIX = "bk_"


def hash_api_key(raw_key: str) -> str:
    # Keys are 256 random bits, so a plain digest is enough: no password stretching needed.
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKey(TimestampedModel):
    """One key per calling service. Only the hash is stored; the key is shown once."""

    name = models.CharField(max_length=100, help_text="The calling service that holds this key.")
    prefix = models.CharField(max_length=16, editable=False, help_text="To recognise a key.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    read_only = models.BooleanField(default=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("revoke_apikey", "Can revoke API key")]
        verbose_name = "API key"
        ordering = ["name", "-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def set_new_key(self) -> str:
        """Give this key a fresh secret and return it; only its hash is kept."""
        raw_key = KEY_PREFIX + secrets.token_urlsafe(32)
        self.prefix = raw_key[:10]
        self.key_hash = hash_api_key(raw_key)
        return raw_key

    @classmethod
    def generate(cls, *, name: str, read_only: bool = False) -> tuple["ApiKey", str]:
        api_key = cls(name=name, read_only=read_only)
        raw_key = api_key.set_new_key()
        api_key.save()
        return api_key, raw_key


class IdempotencyKey(models.Model):
    """A POST's `Idempotency-Key`, with the response it produced, kept 24 hours."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="Hash of method, path and body.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    locked_at = models.DateTimeField(default=timezone.now)
    response_status = models.PositiveSmallIntegerField(null=True)
    # Responses carry the same personal data as the objects they describe.
    response_body = EncryptedTextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_per_api_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} [{self.status}]"
