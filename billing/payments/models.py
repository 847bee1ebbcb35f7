"""Attempts to collect an invoice."""

from django.db import models
from django.db.models import Q

from core.models import TimestampedModel


class PaymentAttempt(TimestampedModel):
    """One try to collect an invoice through Stripe. `processing` is written and committed
    before Stripe is called: a run that finds it there knows a charge may exist and looks
    it up instead of charging again."""

    class Status(models.TextChoices):
        PROCESSING = "processing"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    invoice = models.ForeignKey(
        "invoicing.Invoice", on_delete=models.PROTECT, related_name="attempts"
    )
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices)
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    idempotency_key = models.CharField(max_length=255, unique=True)
    stripe_payment_method_id = models.CharField(max_length=255, blank=True, default="")
    stripe_payment_intent_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    stripe_status = models.CharField(max_length=32, blank=True, default="")
    failure_code = models.CharField(max_length=64, blank=True, default="")
    failure_message = models.CharField(max_length=500, blank=True, default="")
    completed_at = models.DateTimeField(null=True, blank=True)
    # Ours, not Stripe's: the outcome is unknown and cannot be looked up by us (the customer
    # was unlinked from Stripe), so no run touches it again until staff have checked.
    needs_review = models.BooleanField(default=False)
    # False for a charge staff asked for (pay); only automatic ones count against
    # COLLECTION_MAX_CHARGES_PER_CUSTOMER_PER_DAY.
    automatic = models.BooleanField(default=True)

    class Meta:
        db_table = "billing_paymentattempt"
        ordering = ["invoice", "number"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "number"], name="attempt_number_unique"),
            # Never two charges in flight for one invoice.
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(status="processing"),
                name="one_attempt_in_flight",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id} attempt {self.number} [{self.status}]"


class Refund(TimestampedModel):
    """Money sent back to the card a payment came from, through Stripe. Written and
    committed `pending` before Stripe is called, with an idempotency key from our ids: a
    run that finds it pending looks Stripe up by our id before refunding again, so a
    refund is made once however often it is asked for."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    invoice = models.ForeignKey(
        "invoicing.Invoice", on_delete=models.PROTECT, related_name="refunds"
    )
    credit_note = models.OneToOneField(
        "invoicing.CreditNote", on_delete=models.PROTECT, related_name="refund"
    )
    attempt = models.ForeignKey(PaymentAttempt, on_delete=models.PROTECT, related_name="refunds")
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    idempotency_key = models.CharField(max_length=255, unique=True)
    stripe_refund_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    failure_message = models.CharField(max_length=500, blank=True, default="")
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "billing_refund"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="refund_positive"),
        ]

    def __str__(self) -> str:
        return f"refund {self.amount_cents} {self.currency} [{self.status}]"
