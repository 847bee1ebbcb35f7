"""Usage events, each counted once."""

from django.db import models
from django.utils import timezone


class UsageTransaction(models.Model):
    """One row per transaction_id ever accepted: the database, not a lookup, decides what
    is a duplicate. Narrow on purpose: it grows with every usage event."""

    transaction_id = models.CharField(max_length=255, primary_key=True)
    content_hash = models.CharField(max_length=64)
    timestamp = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "billing_usagetransaction"

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
