import pghistory
from django.db import models

from core.encryption import EncryptedTextField
from core.models import TimestampedModel


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(condition=pghistory.AnyChange(exclude_auto=True)),
    pghistory.DeleteEvent(),
)
class Customer(TimestampedModel):
    """A paying customer of the platform, addressed by the caller's `external_id`."""

    external_id = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255, blank=True, default="")
    email = models.EmailField(blank=True, default="", db_index=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    country = models.CharField(max_length=2, blank=True, default="", db_index=True)
    # Personal and tax data: encrypted at rest, hence not searchable.
    address_line1 = EncryptedTextField(blank=True, default="")
    city = EncryptedTextField(blank=True, default="")
    zipcode = EncryptedTextField(blank=True, default="")
    state = EncryptedTextField(blank=True, default="")
    tax_id = EncryptedTextField(blank=True, default="")
    metadata = models.JSONField(blank=True, default=dict)

    stripe_customer_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    lago_id = models.UUIDField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["-created_at", "-id"], name="customer_list_cursor")]

    def __str__(self) -> str:
        return f"{self.name or self.external_id} ({self.external_id})"
