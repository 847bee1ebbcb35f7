"""Writes to the catalog: billable metrics and plans with their charges. Prices are
frozen while any subscription time on them is not invoiced (plan_update, metric_update)."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet

from core.exceptions import Conflict
from subscriptions.charges import validate_properties, validate_prorated
from subscriptions.models import (
    BillableMetric,
    Charge,
    Plan,
    Subscription,
    SubscriptionPeriod,
    SubscriptionPhase,
)
from subscriptions.plan_charges import (
    ChargeSpec,
    charges_differ,
    check_charge_filters,
    replace_charges,
)

S = Subscription.Status


# --- Billable metrics ------------------------------------------------------------------
@transaction.atomic
def metric_create(
    *,
    code: str,
    name: str,
    aggregation: str,
    field_name: str = "",
    description: str = "",
    negative_values_allowed: bool = False,
    filters: list[dict[str, Any]] | None = None,
    recurring: bool = False,
    weighted_interval: str = "",
) -> BillableMetric:
    metric = BillableMetric(
        code=code,
        name=name,
        aggregation=aggregation,
        field_name=field_name or "",
        description=description or "",
        negative_values_allowed=negative_values_allowed,
        filters=filters or [],
        recurring=recurring,
        weighted_interval=weighted_interval or "",
    )
    _check_metric(metric)
    try:
        with transaction.atomic():
            metric.save()
    except IntegrityError as exc:
        raise Conflict(f"A metric with code '{code}' exists.", code="metric_exists") from exc
    return metric


@transaction.atomic
def metric_update(*, metric: BillableMetric, **fields: Any) -> BillableMetric:
    locked = BillableMetric.objects.select_for_update().get(pk=metric.pk)
    pricing = {"aggregation", "field_name", "filters", "recurring", "weighted_interval"} & {
        name for name, value in fields.items() if value != getattr(locked, name)
    }
    if pricing and metric_in_use(locked):
        raise Conflict(
            f"Metric '{locked.code}' is used by a subscribed plan: its {sorted(pricing)} "
            "cannot change under a running subscription. Create a new metric.",
            code="metric_in_use",
        )
    for name, value in fields.items():
        default: Any = [] if name == "filters" else ""
        setattr(locked, name, value if value is not None else default)
    _check_metric(locked)
    if "aggregation" in pricing:
        # A charge's model must still rate the metric (e.g. dynamic needs a sum).
        for charge in Charge.objects.filter(metric=locked):
            try:
                validate_properties(
                    charge.charge_model, charge.properties, aggregation=locked.aggregation
                )
            except ValidationError as exc:
                raise ValidationError({"aggregation": exc.messages}) from exc
    if "filters" in pricing:
        check_charge_filters(locked)
    if {"aggregation", "recurring"} & pricing:
        # A prorated charge needs the metric still recurring (charge.rb validate_prorated).
        for charge in Charge.objects.filter(metric=locked, prorated=True):
            try:
                validate_prorated(
                    charge.charge_model,
                    prorated=True,
                    aggregation=locked.aggregation,
                    recurring=locked.recurring,
                )
            except ValidationError as exc:
                raise ValidationError({"recurring": exc.messages}) from exc
    locked.save()
    return locked


def _check_metric(metric: BillableMetric) -> None:
    # The model's rules (BillableMetric.clean), the admin's forms apply them too. A
    # duplicate code is the unique constraint's Conflict, not a validation error.
    metric.full_clean(exclude=["lago_id"], validate_unique=False)


def metric_in_use(metric: BillableMetric) -> bool:
    """Priced by a subscribed plan: its aggregation and field are frozen."""
    return (
        Subscription.objects.filter(
            plan__charges__metric=metric, status__in=[S.PENDING, S.ACTIVE]
        ).exists()
        or _phases_not_invoiced().filter(plan__charges__metric=metric).exists()
    )


# --- Plans -----------------------------------------------------------------------------
PLAN_PRICING_FIELDS: tuple[str, ...] = ("interval", "amount_cents", "currency", "pay_in_advance")
PLAN_PRICING_FIELDS += ("trial_days", "minimum_commitment_amount_cents")


@transaction.atomic
def plan_create(*, code: str, charges: list[ChargeSpec] | None = None, **fields: Any) -> Plan:
    plan = Plan(code=code, **fields)
    _check_plan(plan)
    try:
        with transaction.atomic():
            plan.save()
            replace_charges(plan, charges or [])
    except IntegrityError as exc:
        raise Conflict(f"A plan with code '{code}' exists.", code="plan_exists") from exc
    return plan


@transaction.atomic
def plan_update(*, plan: Plan, charges: list[ChargeSpec] | None = None, **fields: Any) -> Plan:
    """Names and descriptions may change at any time; prices only while nobody is
    subscribed, so no running subscription is ever re-priced under its feet."""
    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    repriced = [
        name
        for name in PLAN_PRICING_FIELDS
        if name in fields and fields[name] != getattr(locked, name)
    ]
    if charges is not None and charges_differ(locked, charges):
        repriced.append("charges")
    if repriced and plan_in_use(locked):
        raise Conflict(
            f"Plan '{locked.code}' has subscriptions: its {repriced} are frozen. Create a new "
            "plan and move the subscriptions to it.",
            code="plan_in_use",
        )
    for name, value in fields.items():
        setattr(locked, name, value)
    _check_plan(locked)
    locked.save()
    if charges is not None:
        replace_charges(locked, charges)
    return locked


def _check_plan(plan: Plan) -> None:
    # The model's validators (ISO currency, fee and trial bounds): the API's rules, here
    # for every caller. A duplicate code is the unique constraint's Conflict.
    plan.full_clean(exclude=["lago_id"], validate_unique=False)


def plan_in_use(plan: Plan) -> bool:
    """Subscribed now, scheduled, or lived on by time not yet invoiced (an invoice prices
    each stretch with the plan of its phase, so that plan must not change under it)."""
    return (
        Subscription.objects.filter(plan=plan, status__in=[S.PENDING, S.ACTIVE]).exists()
        or Subscription.objects.filter(next_plan=plan, status=S.ACTIVE).exists()
        or _phases_not_invoiced().filter(plan=plan).exists()
    )


def _phases_not_invoiced() -> QuerySet[SubscriptionPhase]:
    billed_past_phase = SubscriptionPeriod.objects.filter(
        subscription=OuterRef("subscription"),
        billed_at__isnull=False,
        end__gte=OuterRef("ended_at"),
    ).exclude(reason=SubscriptionPeriod.Reason.ADVANCE)  # a fee billed ahead rates no usage
    return SubscriptionPhase.objects.filter(ended_at__isnull=False).exclude(
        Exists(billed_past_phase)
    )
