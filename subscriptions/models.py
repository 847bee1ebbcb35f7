from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from core.audit import audited
from core.limits import MAX_FEE_CENTS, MAX_TRIAL_DAYS
from core.models import TimestampedModel
from core.validators import validate_currency
from subscriptions.charges import validate_charge, validate_metric_filters, validate_properties


@audited()
class BillableMetric(TimestampedModel):
    """What usage is measured and how events are aggregated into units."""

    class Aggregation(models.TextChoices):
        COUNT = "count"
        SUM = "sum"
        MAX = "max"
        UNIQUE_COUNT = "unique_count"
        LATEST = "latest"
        # Lago's weighted_sum_agg: the value over time, weighted by the share of the
        # period it held (billing.usage.selectors.usage_units).
        WEIGHTED_SUM = "weighted_sum"

    class WeightedInterval(models.TextChoices):
        SECONDS = "seconds"

    # Lago: only these carry their value over to the next periods (validate_recurring).
    RECURRING_AGGREGATIONS = frozenset({"sum", "unique_count", "weighted_sum"})

    code = models.SlugField(max_length=255, unique=True)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    aggregation = models.CharField(max_length=16, choices=Aggregation.choices)
    field_name = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="The event property aggregated; required unless the aggregation is count.",
    )
    negative_values_allowed = models.BooleanField(
        default=False,
        help_text="Accept negative event values (corrections to a sum). Off: a negative "
        "value would lower the bill, so it is refused.",
    )
    recurring = models.BooleanField(
        default=False,
        help_text="Lago's recurring metric: the value carries over to the next periods "
        "instead of starting again from zero (sum, unique_count, weighted_sum only).",
    )
    weighted_interval = models.CharField(
        max_length=16,
        choices=WeightedInterval.choices,
        blank=True,
        default="",
        help_text="weighted_sum only: the time unit of the weighting (Lago: seconds).",
    )
    lago_id = models.UUIDField(null=True, blank=True, unique=True)
    filters = models.JSONField(
        default=list,
        blank=True,
        help_text="Lago's metric filters: the event properties charges may price by, "
        'with their values ([{"key": "model", "values": ["small", "large"]}]).',
    )

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(aggregation="count") | ~Q(field_name=""),
                name="metric_field_name_unless_count",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def clean(self) -> None:
        # The check constraint's rule, said as a field error (the API's and the admin's).
        if self.aggregation != self.Aggregation.COUNT and not self.field_name:
            raise ValidationError({"field_name": "Required unless the aggregation is count."})
        try:
            validate_metric_filters(self.filters)
        except ValidationError as exc:
            raise ValidationError({"filters": exc.messages}) from exc
        # billable_metric.rb: validate_recurring, weighted_interval only for weighted_sum.
        if self.recurring and self.aggregation not in self.RECURRING_AGGREGATIONS:
            raise ValidationError(
                {"recurring": f"A {self.aggregation} metric cannot be recurring (Lago)."}
            )
        if self.aggregation == self.Aggregation.WEIGHTED_SUM:
            self.weighted_interval = self.weighted_interval or self.WeightedInterval.SECONDS
        elif self.weighted_interval:
            raise ValidationError({"weighted_interval": "Only for a weighted_sum metric."})


@audited()
class Plan(TimestampedModel):
    """A price list: a fixed fee per interval and usage charges. Its prices are frozen while
    a subscription uses it (see services.plan_update)."""

    class Interval(models.TextChoices):
        WEEKLY = "weekly"
        MONTHLY = "monthly"
        QUARTERLY = "quarterly"
        YEARLY = "yearly"

    code = models.SlugField(max_length=255, unique=True)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    interval = models.CharField(max_length=16, choices=Interval.choices)
    # The API's bounds (core.limits, core.validators), applied by the services' full_clean
    # and by the admin's forms.
    amount_cents = models.BigIntegerField(
        validators=[MinValueValidator(0), MaxValueValidator(MAX_FEE_CENTS)]
    )
    currency = models.CharField(max_length=3, validators=[validate_currency])
    pay_in_advance = models.BooleanField(default=False)
    trial_days = models.PositiveIntegerField(
        default=0, validators=[MaxValueValidator(MAX_TRIAL_DAYS)]
    )
    # Lago's minimum commitment: when a period's fees fall short of it, a true-up line
    # makes up the difference (billing.invoicing.rating.commitment_true_ups).
    minimum_commitment_amount_cents = models.BigIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_FEE_CENTS)],
        help_text="The least a full period bills (prorated for a partial one); empty: none.",
    )
    minimum_commitment_invoice_display_name = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text='The true-up line\'s name on invoices; empty: "Minimum commitment".',
    )
    lago_id = models.UUIDField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_cents__gte=0), name="plan_amount_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(minimum_commitment_amount_cents__isnull=True)
                | Q(minimum_commitment_amount_cents__gt=0),
                name="plan_minimum_commitment_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.code


@audited()
class Charge(TimestampedModel):
    """A usage price on a plan: one metric, one charge model, its properties as Lago's."""

    class Model(models.TextChoices):
        STANDARD = "standard"
        GRADUATED = "graduated"
        VOLUME = "volume"
        PACKAGE = "package"
        PERCENTAGE = "percentage"
        GRADUATED_PERCENTAGE = "graduated_percentage"
        DYNAMIC = "dynamic"

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="charges")
    metric = models.ForeignKey(BillableMetric, on_delete=models.PROTECT, related_name="charges")
    charge_model = models.CharField(max_length=32, choices=Model.choices)
    properties = models.JSONField(default=dict)
    # Lago's prorated charge: each unit of a recurring metric billed for the days it
    # existed in the period (billing.usage.selectors.prorated_units).
    prorated = models.BooleanField(default=False)
    lago_id = models.UUIDField(null=True, blank=True)
    # Lago's charge filters: [{invoice_display_name, properties, values: {key: [value]}}],
    # each pricing the events it matches; `properties` price the rest (the default).
    filters = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "metric"], name="one_charge_per_metric"),
        ]

    def __str__(self) -> str:
        return f"{self.plan.code}:{self.metric.code} ({self.charge_model})"

    def clean(self) -> None:
        if self.charge_model not in self.Model.values:
            return  # refused by its own field, which says why
        if self.metric_id is None:
            try:
                validate_properties(self.charge_model, self.properties)
            except ValidationError as exc:
                raise ValidationError({"properties": exc.messages}) from exc
        else:
            validate_charge(
                self.charge_model,
                properties=self.properties,
                filters=self.filters,
                prorated=self.prorated,
                metric=self.metric,
            )


@audited()
class Subscription(TimestampedModel):
    """A customer on a plan. Its status changes only through subscriptions.services."""

    class Status(models.TextChoices):
        PENDING = "pending"
        ACTIVE = "active"
        CANCELED = "canceled"
        TERMINATED = "terminated"

    class BillingTime(models.TextChoices):
        CALENDAR = "calendar"
        ANNIVERSARY = "anniversary"

    external_id = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255, blank=True, default="")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="subscriptions"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=16, choices=Status.choices)
    billing_time = models.CharField(
        max_length=16, choices=BillingTime.choices, default=BillingTime.CALENDAR
    )
    start_at = models.DateTimeField(help_text="When it starts (or started) to be billed.")
    started_at = models.DateTimeField(
        null=True, blank=True, help_text="When it first became active; never rewritten."
    )
    billing_anchor_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=(
            "What its periods are counted from: the start, or the last reactivation or "
            "change of interval."
        ),
    )
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True, db_index=True)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    terminated_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    overrides = models.JSONField(default=dict, blank=True)
    next_plan = models.ForeignKey(
        Plan,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="A downgrade scheduled for the end of the current period.",
    )
    next_overrides = models.JSONField(
        default=dict, blank=True, help_text="The overrides that come with the scheduled plan."
    )
    lago_id = models.UUIDField(null=True, blank=True)

    class Meta:
        permissions = [
            ("cancel_subscription", "Can cancel or terminate subscription"),
            ("change_subscription_plan", "Can change the plan of subscription"),
            ("reactivate_subscription", "Can reactivate subscription"),
        ]
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="subscription_list_cursor"),
            models.Index(fields=["status", "current_period_end"], name="subscription_due"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="active") | Q(current_period_end__isnull=False),
                name="active_subscription_has_a_period",
            ),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def amount_cents(self) -> int:
        """The fixed fee per period: the plan's, unless overridden for this subscription."""
        return int(self.overrides.get("amount_cents", self.plan.amount_cents))


class SubscriptionPhase(models.Model):
    """One stretch of a subscription on one plan: what invoices prorate over."""

    class Reason(models.TextChoices):
        CREATED = "created"
        STARTED = "started"
        OVERRIDES = "overrides", "Overrides changed"
        UPGRADE = "upgrade"
        DOWNGRADE = "downgrade"
        REACTIVATED = "reactivated"

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="phases")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    overrides = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=32, choices=Reason.choices)

    class Meta:
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription"],
                condition=Q(ended_at__isnull=True),
                name="one_open_phase_per_subscription",
            ),
        ]

    def __str__(self) -> str:
        # Read by staff (the admin's inline and history): the plan's code and the dates.
        until = f" to {self.ended_at:%Y-%m-%d %H:%M}" if self.ended_at else ""
        return f"{self.plan.code} from {self.started_at:%Y-%m-%d %H:%M}{until} ({self.reason})"


class SubscriptionPeriod(models.Model):
    """A billing period that has closed: the billing run's queue, one row per period.

    Written in the same transaction as the transition that closed it (a renewal, a
    cancellation or termination, an upgrade to another interval), so a period is never
    missed and never queued twice. `billed_at` is set in the transaction that creates its
    invoice.

    An `advance` row is a moment, not a period (start == end): a pay-in-advance fee billed
    ahead when it falls due (the start, the end of a trial, an upgrade), as Lago bills it;
    its nominal bounds are the period it pays for. The billing run invoices it as soon as
    its moment has passed: there is no usage to wait for.
    """

    class Reason(models.TextChoices):
        """Why the period closed: a renewal bills the next period's advance fee too."""

        RENEWED = "renewed"
        CANCELED = "canceled", "Canceled at period end"
        TERMINATED = "terminated"
        UPGRADE = "upgrade", "Upgraded to another interval"
        CATCH_UP = "catch_up", "Past periods of a back-dated start, billed at once"
        ADVANCE = "advance", "Pay-in-advance fee billed ahead (start, trial end, upgrade)"

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="periods")
    start = models.DateTimeField()
    end = models.DateTimeField()
    # The whole period a partial one is prorated against (a mid-period start or ending).
    nominal_start = models.DateTimeField()
    nominal_end = models.DateTimeField()
    reason = models.CharField(max_length=32, choices=Reason.choices)
    # How many billing periods this row stands for: more than one for the catch-up of a
    # back-dated start, so its past goes on one invoice (one row, one invoice, as ever).
    periods = models.PositiveIntegerField(default=1)
    # The trial as it stood when the period closed (a reactivation starts a new one).
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(auto_now_add=True)
    billed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["start", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "start"],
                condition=~Q(reason="advance"),
                name="one_period_per_start",
            ),
            models.UniqueConstraint(
                fields=["subscription", "start"],
                condition=Q(reason="advance"),
                name="one_advance_per_moment",
            ),
            models.CheckConstraint(
                condition=Q(end__gt=models.F("start"))
                | (Q(reason="advance") & Q(end=models.F("start"))),
                name="period_not_empty",
            ),
        ]
        indexes = [
            models.Index(
                fields=["id"], condition=Q(billed_at__isnull=True), name="period_unbilled"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} [{self.start:%Y-%m-%d}, {self.end:%Y-%m-%d})"
