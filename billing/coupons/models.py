"""Coupons (Lago's): a discount taken off an invoice's subtotal before tax, a fixed
amount or a percentage, once, for N billing periods, or forever; applied to customers."""

from django.db import models
from django.db.models import Q

from core.audit import audited
from core.models import TimestampedModel


@audited()
class Coupon(TimestampedModel):
    class CouponType(models.TextChoices):
        FIXED_AMOUNT = "fixed_amount"
        PERCENTAGE = "percentage"

    class Frequency(models.TextChoices):
        ONCE = "once"
        RECURRING = "recurring"
        FOREVER = "forever"

    class Status(models.TextChoices):
        ACTIVE = "active"
        TERMINATED = "terminated"

    code = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    coupon_type = models.CharField(max_length=16, choices=CouponType.choices)
    amount_cents = models.BigIntegerField(null=True, blank=True)
    amount_currency = models.CharField(max_length=3, blank=True, default="")
    percentage_rate = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    frequency = models.CharField(max_length=16, choices=Frequency.choices)
    frequency_duration = models.PositiveIntegerField(null=True, blank=True)
    # Lago's expiration `time_limit`: after it the coupon is neither applied to customers
    # nor taken off invoices any more.
    expiration_at = models.DateTimeField(null=True, blank=True)
    # How many customers may hold it (None: no limit); `reusable`: one customer more than once.
    redemption_limit = models.PositiveIntegerField(null=True, blank=True)
    reusable = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    terminated_at = models.DateTimeField(null=True, blank=True)
    lago_id = models.UUIDField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("apply_coupon", "Can apply a coupon to a customer")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(coupon_type="fixed_amount", amount_cents__gt=0, percentage_rate__isnull=True)
                    & ~Q(amount_currency="")
                )
                | Q(
                    coupon_type="percentage",
                    amount_cents__isnull=True,
                    percentage_rate__gt=0,
                    percentage_rate__lte=100,
                ),
                name="coupon_amount_or_rate",
            ),
            models.CheckConstraint(
                condition=~Q(frequency="recurring") | Q(frequency_duration__gte=1),
                name="coupon_recurring_has_duration",
            ),
        ]

    def __str__(self) -> str:
        return self.code


@audited()
class AppliedCoupon(TimestampedModel):
    """A coupon held by a customer, with what is left of it: periods for a recurring one,
    amount for a fixed one used once (carried to the next invoice until spent)."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        TERMINATED = "terminated"

    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="applications")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="applied_coupons"
    )
    amount_cents = models.BigIntegerField(null=True, blank=True)
    amount_currency = models.CharField(max_length=3, blank=True, default="")
    percentage_rate = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    frequency = models.CharField(max_length=16, choices=Coupon.Frequency.choices)
    frequency_duration_remaining = models.PositiveIntegerField(null=True, blank=True)
    amount_cents_remaining = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    terminated_at = models.DateTimeField(null=True, blank=True)
    lago_id = models.UUIDField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_cents_remaining__isnull=True) | Q(amount_cents_remaining__gte=0),
                name="applied_coupon_remaining_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.coupon_id} for {self.customer_id}"
