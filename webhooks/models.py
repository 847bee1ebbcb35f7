from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.encryption import EncryptedTextField
from core.models import TimestampedModel
from core.queue import QueueRow


class WebhookEvent(TimestampedModel, QueueRow):
    """One event a provider posted to us, stored before anything is done with it.

    The unique (provider, event_id) makes a redelivery harmless; the stored body lets staff
    replay processing without asking the provider to send it again. Processing is retried
    through core.queue, whose fields (attempts, available_at, locked_at, ...) it carries.
    """

    class Provider(models.TextChoices):
        STRIPE = "stripe"
        LAGO = "lago"

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSING = "processing"
        PROCESSED = "processed"
        FAILED = "failed"
        IGNORED = "ignored"

    provider = models.CharField(max_length=16, choices=Provider.choices)
    event_id = models.CharField(
        max_length=255, help_text="Stripe's evt_… id; Lago's X-Lago-Unique-Key."
    )
    type = models.CharField(max_length=128, db_index=True)
    # Provider payloads hold names, emails and addresses: encrypted like our own fields.
    body = EncryptedTextField()
    headers = models.JSONField(default=dict, blank=True)
    body_sha256 = models.CharField(max_length=64, blank=True, default="")
    object_id = models.CharField(
        max_length=255,
        blank=True,
        default="",
        db_index=True,
        help_text="The provider's id of the object the event is about.",
    )
    provider_created_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    note = models.CharField(max_length=255, blank=True, default="")
    customer = models.ForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="webhook_events",
    )
    related = models.JSONField(
        default=list, blank=True, help_text="Local objects this event touched: [{type, id}]."
    )

    class Meta:
        permissions = [("replay_webhookevent", "Can replay webhook event")]
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="webhook_event_once"),
            # Lago's X-Lago-Unique-Key is outside its signature: a captured body re-posted
            # under a new key must still count once.
            models.UniqueConstraint(
                fields=["provider", "body_sha256"],
                condition=Q(provider="lago"),
                name="lago_webhook_body_once",
            ),
        ]
        indexes = [
            models.Index(
                fields=["status", "available_at"],
                condition=Q(status__in=["received", "processing"]),
                name="webhook_unfinished",
            ),
            # /metrics counts failed events at every scrape; processed ones pile up forever.
            models.Index(fields=["provider"], condition=Q(status="failed"), name="webhook_failed"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.type} {self.event_id}"


class ObjectVersion(models.Model):
    """The newest provider state applied to one provider object.

    Providers deliver at least once and out of order; a handler applies an event only if it
    is newer than what this row says was applied, so nothing moves back in time.
    """

    provider = models.CharField(max_length=16)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=255)
    version_at = models.DateTimeField(null=True, help_text="Empty until an event is applied.")
    rank = models.SmallIntegerField(default=0, help_text="Orders states of the same instant.")
    event = models.ForeignKey(WebhookEvent, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "object_type", "object_id"], name="object_version_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.object_type} {self.object_id} @ {self.version_at}"


class UsageEventError(models.Model):
    """An event Lago could not use (reported only later, by its `events.errors` webhook)."""

    transaction_id = models.CharField(max_length=255, db_index=True)
    error = models.CharField(max_length=64)
    webhook_event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["transaction_id", "error", "webhook_event"], name="usage_event_error_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.transaction_id}: {self.error}"
