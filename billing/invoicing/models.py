"""Invoices, their lines and their numbering.

A finalized invoice is immutable in the database itself: triggers (migration 0005) refuse
any change to its amounts, lines, number or dates, leaving only its payment state and the
move to `voided` open. The API and admin refuse the same earlier, with clearer errors.
"""

from datetime import datetime

from django.db import models
from django.db.models import Q
from django.db.models.functions import Greatest

from core.audit import audited
from core.models import TimestampedModel


class InvoiceSequence(models.Model):
    """The next invoice number of one issuer. Locked by the finalizing transaction, so
    numbers are sequential and a rolled-back finalization leaves no gap."""

    issuer = models.CharField(max_length=32, primary_key=True)
    prefix = models.CharField(max_length=32)
    next_value = models.PositiveBigIntegerField(default=1)

    class Meta:
        db_table = "billing_invoicesequence"

    def __str__(self) -> str:
        return f"{self.issuer}: next {self.prefix}-{self.next_value:06d}"


@audited(table="billing_invoiceevent")
class Invoice(TimestampedModel):
    class Status(models.TextChoices):
        DRAFT = "draft"
        FINALIZED = "finalized"
        VOIDED = "voided"

    class PaymentStatus(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        PARTIALLY_REFUNDED = "partially_refunded"
        REFUNDED = "refunded"
        # Voided before it was paid: nothing is due, nothing is collected.
        VOIDED = "voided"

    class Engine(models.TextChoices):
        LOCAL = "local"
        LAGO = "lago"

    class InvoiceType(models.TextChoices):
        """Lago's invoice types: a subscription period, a one-off invoice of add-ons, or
        the purchase of prepaid credits (a wallet top-up)."""

        SUBSCRIPTION = "subscription"
        ONE_OFF = "one_off"
        CREDIT = "credit"

    class BlockedReason(models.TextChoices):
        """Why collection is not going ahead: a code machines branch on; the label (and
        `payment_blocked_detail`) is what staff read."""

        PAYMENTS_NOT_CONFIGURED = (
            "payments_not_configured",
            "Payments are not configured (no STRIPE_SECRET_KEY).",
        )
        NO_DEFAULT_CARD = "no_default_card", "The customer has no default payment method."
        CUSTOMER_NOT_IN_STRIPE = "customer_not_in_stripe", "The customer is not in Stripe yet."
        DUNNING_EXHAUSTED = (
            "dunning_exhausted",
            "Payment failed on every scheduled attempt: retry it after the customer updates "
            "their card.",
        )
        PAYMENT_OUTCOME_UNKNOWN = (
            "payment_outcome_unknown",
            "The outcome of a payment attempt is unknown and the customer is no longer linked "
            "to Stripe: check Stripe for a charge with metadata payment_attempt_id of the "
            "attempt under review before anything else.",
        )
        CREDIT_OWED = (
            "credit_owed",
            "A credit is owed to the customer: refund it or carry it to the next invoice.",
        )
        PAID_IN_LAGO = "paid_in_lago", "Recorded as paid in Lago."
        DAILY_CHARGE_LIMIT = (
            "daily_charge_limit",
            "The customer was charged automatically as many times as allowed in 24 hours "
            "(COLLECTION_MAX_CHARGES_PER_CUSTOMER_PER_DAY): check the charges, then retry it.",
        )
        OTHER = "other", "Blocked (see the invoice's history)."

    class Reconciliation(models.TextChoices):
        NOT_CHECKED = "not_checked"
        MATCHED = "matched"
        MISMATCH = "mismatch"

    number = models.CharField(max_length=64, null=True, blank=True, unique=True)
    issuer = models.CharField(max_length=32, blank=True, default="")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="invoices"
    )
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invoices",
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    currency = models.CharField(max_length=3)
    invoice_type = models.CharField(
        max_length=16, choices=InvoiceType.choices, default=InvoiceType.SUBSCRIPTION
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    payment_status = models.CharField(
        max_length=32, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    # The totals, in the order they are computed (billing/invoicing/totals.py), each
    # rounded once: fees - coupons = subtotal; subtotal + taxes = total; total - prepaid
    # credits - credit balance = payable. Fees to total are fixed when the draft is
    # rated; the credits when it is finalized.
    fees_amount_cents = models.BigIntegerField(default=0)
    coupons_amount_cents = models.BigIntegerField(default=0)
    subtotal_amount_cents = models.BigIntegerField(default=0)
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    taxes_amount_cents = models.BigIntegerField(default=0)
    total_amount_cents = models.BigIntegerField(default=0)
    prepaid_credit_amount_cents = models.BigIntegerField(default=0)
    credit_balance_amount_cents = models.BigIntegerField(default=0)
    # After issue: what was paid, what credit notes took off the amount due (offset),
    # credited in all, and refunded to the card. Kept by their services under the
    # invoice's row lock; the database checks they stay within what was payable.
    paid_amount_cents = models.BigIntegerField(default=0)
    offset_amount_cents = models.BigIntegerField(default=0)
    credited_amount_cents = models.BigIntegerField(default=0)
    refunded_amount_cents = models.BigIntegerField(default=0)
    issued_at = models.DateTimeField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # Collection: when the next attempt is due (None: none planned), and why none can run.
    next_payment_attempt_at = models.DateTimeField(null=True, blank=True)
    payment_blocked_reason = models.CharField(
        max_length=255, choices=BlockedReason.choices, blank=True, default=""
    )
    # Staff (or the API's pay) asked for the next charge: it is explicit, so the daily limit
    # on automatic charges does not hold it back. Cleared when that attempt starts.
    collection_approved = models.BooleanField(default=False)
    engine = models.CharField(max_length=8, choices=Engine.choices, default=Engine.LOCAL)
    lago_id = models.UUIDField(null=True, blank=True, unique=True)
    lago_number = models.CharField(max_length=64, blank=True, default="")
    lago_payment_status_sent = models.CharField(max_length=16, blank=True, default="")
    reconciliation = models.CharField(
        max_length=16, choices=Reconciliation.choices, default=Reconciliation.NOT_CHECKED
    )
    reconciliation_note = models.TextField(blank=True, default="")

    class Meta:
        db_table = "billing_invoice"
        ordering = ["-created_at", "-id"]
        # Voiding an issued invoice is finance's (the finance admin role); finalizing and
        # retrying are `change_invoice`.
        permissions = [("void_invoice", "Can void an invoice")]
        constraints = [
            # One live invoice per subscription period: generation is idempotent by it,
            # also when two requests race (INSERT ... ON CONFLICT). A voided one may be
            # replaced.
            models.UniqueConstraint(
                fields=["subscription", "period_start", "period_end"],
                condition=Q(status__in=["draft", "finalized"]) & Q(engine="local"),
                name="one_live_invoice_per_period",
            ),
            # One kept preview of Lago's per subscription period (racing requests).
            models.UniqueConstraint(
                fields=["subscription", "period_start"],
                condition=Q(engine="lago", lago_id__isnull=True, status="draft"),
                name="one_lago_preview_per_period",
            ),
            models.CheckConstraint(
                condition=~Q(status="finalized") | Q(number__isnull=False) | Q(engine="lago"),
                name="issued_invoice_has_number",
            ),
            models.CheckConstraint(
                condition=Q(
                    total_amount_cents=models.F("subtotal_amount_cents")
                    + models.F("taxes_amount_cents")
                ),
                name="invoice_total_is_subtotal_plus_taxes",
            ),
            models.CheckConstraint(
                condition=Q(
                    subtotal_amount_cents=models.F("fees_amount_cents")
                    - models.F("coupons_amount_cents")
                ),
                name="invoice_subtotal_is_fees_less_coupons",
            ),
            models.CheckConstraint(
                condition=Q(coupons_amount_cents__gte=0)
                & Q(prepaid_credit_amount_cents__gte=0)
                & Q(credit_balance_amount_cents__gte=0)
                & Q(paid_amount_cents__gte=0)
                & Q(offset_amount_cents__gte=0)
                & Q(credited_amount_cents__gte=0)
                & Q(refunded_amount_cents__gte=0),
                name="invoice_amounts_not_negative",
            ),
            # Credits never take more than the total, and what is paid plus what credit
            # notes offset never exceeds what was payable; a refund never exceeds what
            # was paid.
            models.CheckConstraint(
                condition=Q(
                    prepaid_credit_amount_cents__lte=Greatest(models.F("total_amount_cents"), 0)
                    - models.F("credit_balance_amount_cents")
                ),
                name="invoice_credits_within_total",
            ),
            models.CheckConstraint(
                condition=Q(
                    paid_amount_cents__lte=Greatest(models.F("total_amount_cents"), 0)
                    - models.F("prepaid_credit_amount_cents")
                    - models.F("credit_balance_amount_cents")
                    - models.F("offset_amount_cents")
                ),
                name="invoice_paid_within_payable",
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount_cents__lte=models.F("paid_amount_cents")),
                name="invoice_refunded_within_paid",
            ),
            models.CheckConstraint(
                condition=Q(credited_amount_cents__lte=Greatest(models.F("total_amount_cents"), 0)),
                name="invoice_credited_within_total",
            ),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="invoice_list_cursor"),
            models.Index(fields=["customer", "-created_at"], name="invoice_by_customer"),
            models.Index(fields=["subscription", "period_start"], name="invoice_by_period"),
            models.Index(
                fields=["payment_status"],
                condition=Q(status="finalized", payment_status__in=["pending", "failed"]),
                name="invoice_awaiting_payment",
            ),
            models.Index(fields=["issued_at"], name="invoice_by_issue_date"),
            # The billing run's sweep of drafts left unfinalized.
            models.Index(fields=["period_end"], condition=Q(status="draft"), name="invoice_drafts"),
            models.Index(
                fields=["next_payment_attempt_at"],
                condition=Q(next_payment_attempt_at__isnull=False),
                name="invoice_collection_due",
            ),
        ]

    def __str__(self) -> str:
        return self.number or self.lago_number or f"draft {self.pk}"

    @property
    def payment_blocked_detail(self) -> str:
        """The blocked reason in words, with this invoice's figures where they help."""
        if not self.payment_blocked_reason:
            return ""
        if self.payment_blocked_reason == self.BlockedReason.CREDIT_OWED:
            return (
                f"A credit of {-self.total_amount_cents} {self.currency} minor units is owed "
                "to the customer: refund it or carry it to the next invoice."
            )
        return self.get_payment_blocked_reason_display()

    def mark_voided(self, now: datetime) -> None:
        """Voided: nothing is owed any more (a paid or refunded one keeps that status)."""
        self.status = self.Status.VOIDED
        self.voided_at = now
        self.next_payment_attempt_at = None
        if self.payment_status in (self.PaymentStatus.PENDING, self.PaymentStatus.FAILED):
            self.payment_status = self.PaymentStatus.VOIDED
            self.payment_blocked_reason = ""

    @property
    def payable_amount_cents(self) -> int:
        """What is left to pay once credits are applied: never negative (a negative
        total is credited to the customer's balance instead)."""
        return max(
            self.total_amount_cents
            - self.prepaid_credit_amount_cents
            - self.credit_balance_amount_cents,
            0,
        )

    @property
    def amount_due_cents(self) -> int:
        """What the customer still owes on this invoice: the payable less what was paid
        and what credit notes offset. Nothing on a draft or a voided invoice."""
        if self.status != self.Status.FINALIZED or self.payment_status in (
            self.PaymentStatus.SUCCEEDED,
            self.PaymentStatus.PARTIALLY_REFUNDED,
            self.PaymentStatus.REFUNDED,
        ):
            return 0
        return max(self.payable_amount_cents - self.paid_amount_cents - self.offset_amount_cents, 0)


class InvoiceLine(models.Model):
    class FeeType(models.TextChoices):
        SUBSCRIPTION = "subscription"
        CHARGE = "charge"
        COMMITMENT = "commitment"  # Lago's minimum commitment true-up
        COUPON = "coupon"  # a coupon's discount: a negative line, before tax
        ADD_ON = "add_on"  # a one-off charge from the add-on catalog
        CREDIT = "credit"  # prepaid credits bought (a wallet top-up)

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    fee_type = models.CharField(max_length=16, choices=FeeType.choices)
    description = models.CharField(max_length=255)
    plan_code = models.CharField(max_length=255, blank=True, default="")
    metric = models.ForeignKey(
        "subscriptions.BillableMetric",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    charge_model = models.CharField(max_length=32, blank=True, default="")
    # The prices the line was rated with, kept with it: the plan may change later.
    properties = models.JSONField(default=dict, blank=True)
    # Pricing by dimension: the charge filter the line prices (its display name; blank
    # for the events no filter matches) and its pricing group ({key: value}).
    filter = models.CharField(max_length=255, blank=True, default="")
    grouped_by = models.JSONField(default=dict, blank=True)
    units = models.DecimalField(max_digits=38, decimal_places=12)
    unit_amount = models.DecimalField(max_digits=38, decimal_places=12)
    amount_cents = models.BigIntegerField()
    # What credit notes took off this line (before tax). The one column of an issued
    # invoice's line that may still change (migration 0009), and never beyond the line.
    credited_amount_cents = models.BigIntegerField(default=0)
    from_datetime = models.DateTimeField()
    to_datetime = models.DateTimeField()
    # On a Lago invoice's line: Lago's fee id, which a credit note's items name.
    lago_fee_id = models.UUIDField(null=True, blank=True, editable=False)

    class Meta:
        db_table = "billing_invoiceline"
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="line_position_unique"),
            models.CheckConstraint(
                condition=Q(credited_amount_cents__gte=0)
                & Q(credited_amount_cents__lte=Greatest(models.F("amount_cents"), 0)),
                name="line_credited_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount_cents}"

    @property
    def creditable_amount_cents(self) -> int:
        return max(self.amount_cents - self.credited_amount_cents, 0)


@audited(table="billing_creditnoteevent")
class CreditNote(TimestampedModel):
    """A correction of an issued invoice (Lago's credit note): what it takes off each
    line, the tax in proportion, and where the money goes: back to the card (refund), to
    the customer's credit balance (credit, taken off later invoices), or off what the
    invoice still owes (offset). Numbered in its own gapless sequence; immutable once
    issued, except its refund and balance state (migration 0009)."""

    class Reason(models.TextChoices):
        DUPLICATED_CHARGE = "duplicated_charge"
        PRODUCT_UNSATISFACTORY = "product_unsatisfactory"
        ORDER_CHANGE = "order_change"
        ORDER_CANCELLATION = "order_cancellation"
        FRAUDULENT_CHARGE = "fraudulent_charge"
        OTHER = "other"

    class Status(models.TextChoices):
        ISSUED = "issued"
        VOIDED = "voided"

    class RefundStatus(models.TextChoices):
        NONE = "", "No refund"
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    number = models.CharField(max_length=64, unique=True)
    issuer = models.CharField(max_length=32)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="credit_notes"
    )
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=32, choices=Reason.choices)
    description = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ISSUED)
    subtotal_amount_cents = models.BigIntegerField()
    coupons_amount_cents = models.BigIntegerField(default=0)
    taxes_amount_cents = models.BigIntegerField()
    total_amount_cents = models.BigIntegerField()
    refund_amount_cents = models.BigIntegerField(default=0)
    credit_amount_cents = models.BigIntegerField(default=0)
    offset_amount_cents = models.BigIntegerField(default=0)
    # What is left of the credit for later invoices (Lago's balance_amount_cents).
    balance_amount_cents = models.BigIntegerField(default=0)
    refund_status = models.CharField(
        max_length=16, choices=RefundStatus.choices, blank=True, default=RefundStatus.NONE
    )
    # A refund made in Stripe's dashboard, recorded here after the fact: staff check why.
    needs_review = models.BooleanField(default=False)
    issued_at = models.DateTimeField()
    voided_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=255, blank=True, default="")
    # Lago's copy, when Lago is the engine of record (set once the outbox has made it).
    lago_id = models.UUIDField(null=True, blank=True, editable=False)
    lago_number = models.CharField(max_length=64, blank=True, default="", editable=False)

    class Meta:
        db_table = "billing_creditnote"
        ordering = ["-issued_at", "-id"]
        permissions = [
            ("issue_credit_note", "Can issue a credit note"),
            ("void_credit_note", "Can void a credit note"),
        ]
        indexes = [
            models.Index(fields=["-issued_at", "-id"], name="credit_note_list_cursor"),
            models.Index(
                fields=["customer", "currency"],
                condition=Q(balance_amount_cents__gt=0, status="issued"),
                name="credit_note_with_balance",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    total_amount_cents=models.F("subtotal_amount_cents")
                    + models.F("taxes_amount_cents")
                ),
                name="credit_note_total_is_subtotal_plus_taxes",
            ),
            models.CheckConstraint(
                condition=Q(
                    total_amount_cents=models.F("refund_amount_cents")
                    + models.F("credit_amount_cents")
                    + models.F("offset_amount_cents")
                ),
                name="credit_note_total_is_its_split",
            ),
            models.CheckConstraint(
                condition=Q(total_amount_cents__gt=0)
                & Q(subtotal_amount_cents__gte=0)
                & Q(taxes_amount_cents__gte=0)
                & Q(coupons_amount_cents__gte=0)
                & Q(refund_amount_cents__gte=0)
                & Q(credit_amount_cents__gte=0)
                & Q(offset_amount_cents__gte=0)
                & Q(balance_amount_cents__gte=0)
                & Q(balance_amount_cents__lte=models.F("credit_amount_cents")),
                name="credit_note_amounts_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class CreditNoteItem(models.Model):
    credit_note = models.ForeignKey(CreditNote, on_delete=models.PROTECT, related_name="items")
    invoice_line = models.ForeignKey(InvoiceLine, on_delete=models.PROTECT, related_name="+")
    amount_cents = models.BigIntegerField()

    class Meta:
        db_table = "billing_creditnoteitem"
        ordering = ["invoice_line__position"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="credit_item_positive"),
            models.UniqueConstraint(
                fields=["credit_note", "invoice_line"], name="one_item_per_line"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.credit_note_id}: {self.amount_cents}"


class CreditApplication(models.Model):
    """A credit note's balance taken off a later invoice at its finalization: which note,
    which invoice, how much; negative when that invoice was voided and the credit given
    back. The audit of the customer's credit balance."""

    credit_note = models.ForeignKey(
        CreditNote, on_delete=models.PROTECT, related_name="applications"
    )
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="+")
    amount_cents = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "billing_creditapplication"
        constraints = [
            models.CheckConstraint(condition=~Q(amount_cents=0), name="credit_applied_not_zero"),
        ]

    def __str__(self) -> str:
        return f"{self.credit_note_id} -> {self.invoice_id}: {self.amount_cents}"


@audited()
class AddOn(TimestampedModel):
    """A one-off charge in the catalog (Lago's add-on): a setup fee, support hours. Billed
    on one-off invoices, `units` times its amount (or an amount given for the invoice)."""

    code = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255)
    invoice_display_name = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(blank=True, default="")
    amount_cents = models.BigIntegerField()
    amount_currency = models.CharField(max_length=3)
    lago_id = models.UUIDField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["code"]
        permissions = [("create_one_off_invoice", "Can create a one-off invoice")]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gte=0), name="add_on_amount"),
        ]

    def __str__(self) -> str:
        return self.code
