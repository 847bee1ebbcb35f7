"""A plan's charges: what the API (or a seed, or the admin) gives, whether it differs
from what the plan has, and replacing them; and the guard that keeps a metric's filters
from being changed from under the charge filters that price by them."""

import json
from typing import Any, NotRequired, TypedDict

from django.core.exceptions import ValidationError

from core.exceptions import Conflict
from subscriptions.charges import validate_charge, validate_charge_filters
from subscriptions.models import BillableMetric, Charge, Plan


class ChargeSpec(TypedDict):
    """One charge of a plan as the API (or a seed) gives it."""

    metric: BillableMetric
    charge_model: str
    properties: dict[str, Any]
    filters: NotRequired[list[dict[str, Any]]]
    prorated: NotRequired[bool]


def charges_differ(plan: Plan, charges: list[ChargeSpec]) -> bool:
    current = {
        (
            c.metric.code,
            c.charge_model,
            _canonical(c.properties),
            _canonical(c.filters),
            c.prorated,
        )
        for c in plan.charges.select_related("metric")
    }
    wanted = {
        (
            c["metric"].code,
            c["charge_model"],
            _canonical(c["properties"]),
            _canonical(c.get("filters") or []),
            c.get("prorated", False),
        )
        for c in charges
    }
    return current != wanted


def _canonical(properties: dict[str, Any] | list[Any]) -> str:
    return json.dumps(properties, sort_keys=True)


def replace_charges(plan: Plan, charges: list[ChargeSpec]) -> None:
    for charge in charges:
        try:
            validate_charge(
                charge["charge_model"],
                properties=charge["properties"],
                filters=charge.get("filters"),
                prorated=charge.get("prorated", False),
                metric=charge["metric"],
            )
        except ValidationError as exc:
            raise ValidationError({"charges": exc.messages}) from exc
    metrics = [c["metric"].pk for c in charges]
    if len(metrics) != len(set(metrics)):
        raise ValidationError({"charges": "One charge per metric."})
    plan.charges.all().delete()
    Charge.objects.bulk_create(
        Charge(
            plan=plan,
            metric=c["metric"],
            charge_model=c["charge_model"],
            properties=c["properties"],
            filters=c.get("filters") or [],
            prorated=c.get("prorated", False),
        )
        for c in charges
    )


def check_charge_filters(metric: BillableMetric) -> None:
    """A metric's filters may change while no subscription uses it, but not from under a
    plan's charge filters that name its keys and values."""
    for charge in metric.charges.select_related("plan"):
        try:
            validate_charge_filters(charge.charge_model, charge.filters, metric.filters)
        except ValidationError as exc:
            raise Conflict(
                f"Plan '{charge.plan.code}' prices metric '{metric.code}' by filters these "
                f"filters no longer allow ({'; '.join(exc.messages)}). Change the plan first.",
                code="metric_filters_in_use",
            ) from exc
