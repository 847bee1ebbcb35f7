"""Usage events, each counted once, and the runs that forward them to Lago."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.queue import QueueRow


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
    # The event's own amount, in minor units, for a dynamic charge (Lago's field).
    precise_total_amount_cents = models.DecimalField(max_digits=38, decimal_places=12, null=True)
    unique_value = models.TextField(null=True)
    received_at = models.DateTimeField()
    lago_status = models.CharField(max_length=16, choices=LagoStatus.choices)

    class Meta:
        managed = False
        db_table = "billing_usagerecord"
        ordering = ["-timestamp", "-id"]

    def __str__(self) -> str:
        return self.transaction_id


class UsageForwardingRun(QueueRow):
    """A request to send the pending usage records to Lago (BILLING_ENGINE=lago).

    The records' `lago_status` says what is left to send; a run only schedules the sending,
    retried through core.queue. At most one run is pending (a partial unique index), so the
    thousand batches recorded before a worker gets to it queue one run.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        DONE = "done"
        FAILED = "failed"
        # Staff retried a run while another was pending: that one does the work.
        SUPERSEDED = "superseded"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [("retry_usageforwardingrun", "Can retry usage forwarding run")]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="pending"),
                name="usage_forwarding_one_pending",
            ),
        ]
        indexes = [
            # The sweeper's and the backlog gauge's scans touch only unfinished rows.
            models.Index(
                fields=["status", "available_at"],
                condition=Q(status__in=["pending", "processing"]),
                name="usage_forwarding_unfinished",
            ),
            models.Index(
                fields=["status"], condition=Q(status="failed"), name="usage_forwarding_failed"
            ),
        ]

    def __str__(self) -> str:
        return f"usage forwarding run {self.pk} [{self.status}]"
