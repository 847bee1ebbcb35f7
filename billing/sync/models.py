"""The sync outbox: provider work recorded in the transaction that caused it."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.queue import QueueRow


class OutboxMessage(QueueRow):
    """An intent to bring one local object to one provider, written with the change itself.

    At most one *pending* message exists per (provider, action, object): saving an object
    ten times before the worker runs syncs it once, with its latest state. The retry
    fields (attempts, available_at, locked_at, last_error, ...) are core.queue's.
    """

    class Provider(models.TextChoices):
        STRIPE = "stripe"
        LAGO = "lago"

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        DONE = "done"
        FAILED = "failed"
        # A newer pending message for the same object took this one's place.
        SUPERSEDED = "superseded"

    provider = models.CharField(max_length=16, choices=Provider.choices)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, help_text="app_label.model of the object.")
    object_id = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [("retry_outboxmessage", "Can retry outbox message")]
        db_table = "billing_outboxmessage"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "action", "object_type", "object_id"],
                condition=Q(status="pending"),
                name="outbox_one_pending_per_object",
            ),
        ]
        indexes = [
            # The sweeper's and the backlog gauge's scans touch only unfinished rows.
            models.Index(
                fields=["status", "available_at"],
                condition=Q(status__in=["pending", "processing"]),
                name="outbox_unfinished",
            ),
            models.Index(
                fields=["object_type", "object_id", "provider", "-created_at"],
                name="outbox_by_object",
            ),
            # /metrics counts failed rows at every scrape; done ones pile up forever.
            models.Index(fields=["provider"], condition=Q(status="failed"), name="outbox_failed"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.action} {self.object_type}:{self.object_id} [{self.status}]"
