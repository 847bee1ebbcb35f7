from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Upper

from core.audit import audited
from core.encryption import EncryptedTextField
from core.models import TimestampedModel
from core.validators import (
    validate_country,
    validate_currency,
    validate_external_id,
    validate_metadata,
)


@audited()
class Customer(TimestampedModel):
    """A paying customer of the platform, addressed by the caller's `external_id`."""

    # The validators are the API's own (core.validators): the services' full_clean and
    # the admin's forms apply them, so nothing the API refuses is saved another way.
    external_id = models.CharField(max_length=255, unique=True, validators=[validate_external_id])
    name = models.CharField(max_length=255, blank=True, default="")
    email = models.EmailField(blank=True, default="")
    currency = models.CharField(
        max_length=3, blank=True, default="", validators=[validate_currency]
    )
    country = models.CharField(
        max_length=2, blank=True, default="", db_index=True, validators=[validate_country]
    )
    tax_rate = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Tax rate in percent applied to this customer's invoices.",
    )
    # Personal and tax data: encrypted at rest, hence not searchable.
    address_line1 = EncryptedTextField(blank=True, default="")
    city = EncryptedTextField(blank=True, default="")
    zipcode = EncryptedTextField(blank=True, default="")
    state = EncryptedTextField(blank=True, default="")
    tax_id = EncryptedTextField(blank=True, default="")
    metadata = models.JSONField(blank=True, default=dict, validators=[validate_metadata])

    stripe_customer_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    lago_id = models.UUIDField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="customer_list_cursor"),
            # ?email= is case-insensitive (UPPER(email) = UPPER(%s)); this serves it.
            models.Index(Upper("email"), name="customer_email_upper"),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.external_id} ({self.external_id})"


@audited()
class PaymentMethod(TimestampedModel):
    """A customer's way to pay, held by Stripe. We keep only what staff need to recognise it:
    never a card number, a CVC or an expiry string."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        DETACHED = "detached"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payment_methods")
    stripe_payment_method_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=32, default="card")
    brand = models.CharField(max_length=32, blank=True, default="")
    last4 = models.CharField(max_length=4, blank=True, default="")
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True, default="")
    billing_country = models.CharField(max_length=2, blank=True, default="")
    is_default = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    detached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [
            ("manage_payment_method", "Can set default or remove (detach) payment method")
        ]
        ordering = ["-created_at"]
        constraints = [
            # At most one default per customer, enforced by the database itself.
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(is_default=True),
                name="one_default_payment_method_per_customer",
            ),
            models.CheckConstraint(
                condition=~models.Q(is_default=True, status="detached"),
                name="detached_payment_method_is_not_default",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.brand or self.type} ••••{self.last4}"
            if self.last4
            else self.stripe_payment_method_id
        )
