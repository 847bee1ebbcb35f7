from django.db import models
from django.db.models import Q
from django.utils import timezone


class OutboxMessage(models.Model):
    """An intent to bring one local object to one provider, written with the change itself.

    At most one *pending* message exists per (provider, action, object): saving an object
    ten times before the worker runs syncs it once, with its latest state.
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
    attempts = models.PositiveIntegerField(default=0)
    available_at = models.DateTimeField(default=timezone.now)
    locked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    request_id = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(
        null=True, blank=True, help_text="When the sweeper last re-published it."
    )

    class Meta:
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
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.action} {self.object_type}:{self.object_id} [{self.status}]"


class UsageTransaction(models.Model):
    """One row per transaction_id ever accepted: the database, not a lookup, decides what
    is a duplicate. Narrow on purpose: it grows with every usage event."""

    transaction_id = models.CharField(max_length=255, primary_key=True)
    content_hash = models.CharField(max_length=64)
    timestamp = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.transaction_id


class UsageRecord(models.Model):
    """A usage event, counted once. The table is partitioned by month of `timestamp`
    (created by migration 0004 with raw SQL; Django does not manage it), so a period's
    reads touch one or two partitions and old months can be detached and archived."""

    class LagoStatus(models.TextChoices):
        DISABLED = "disabled"
        PENDING = "pending"
        SENT = "sent"
        # Lago refused it for good (reported to staff); never re-sent on its own.
        REFUSED = "refused"

    id = models.BigIntegerField(primary_key=True)
    transaction_id = models.CharField(max_length=255)
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    metric = models.ForeignKey(
        "subscriptions.BillableMetric",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    timestamp = models.DateTimeField()
    properties = models.JSONField(default=dict)
    value = models.DecimalField(max_digits=38, decimal_places=12, null=True)
    unique_value = models.TextField(null=True)
    received_at = models.DateTimeField()
    lago_status = models.CharField(max_length=16, choices=LagoStatus.choices)

    class Meta:
        managed = False
        db_table = "billing_usagerecord"
        ordering = ["-timestamp", "-id"]

    def __str__(self) -> str:
        return self.transaction_id


from billing.invoice_models import (  # noqa: E402  (models of this app, split by concept)
    Invoice,
    InvoiceLine,
    InvoiceSequence,
    PaymentAttempt,
)

__all__ = [
    "Invoice",
    "InvoiceLine",
    "InvoiceSequence",
    "OutboxMessage",
    "PaymentAttempt",
    "UsageRecord",
    "UsageTransaction",
]
