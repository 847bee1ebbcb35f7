"""Lago's billable metrics and plans, kept equal to ours by the outbox."""

from typing import Any

from billing.providers.base import (
    CommitmentData,
    LagoCharge,
    LagoMetric,
    LagoPlan,
    MetricData,
    PlanData,
    ProviderError,
)
from billing.providers.lago.client import lago_id_of, object_in, request, segment, text_of

AGGREGATIONS = {
    "count": "count_agg",
    "sum": "sum_agg",
    "max": "max_agg",
    "unique_count": "unique_count_agg",
    "latest": "latest_agg",
    "weighted_sum": "weighted_sum_agg",
}


def metric_upsert(*, metric: MetricData, exists: bool) -> LagoMetric:
    payload: dict[str, Any] = {
        "name": metric.name,
        "code": metric.code,
        "aggregation_type": AGGREGATIONS[metric.aggregation],
        "description": metric.description or None,
        "recurring": metric.recurring,
    }
    if metric.weighted_interval:
        payload["weighted_interval"] = metric.weighted_interval
    if metric.field_name:
        payload["field_name"] = metric.field_name
    # Always sent, so removing the last filter reaches Lago too.
    payload["filters"] = [{"key": item.key, "values": list(item.values)} for item in metric.filters]
    remote = _upsert("billable_metrics", "billable_metric", metric.code, payload, exists=exists)
    return LagoMetric(
        lago_id=lago_id_of(remote, "billable metric"), code=text_of(remote.get("code"))
    )


def plan_upsert(*, plan: PlanData, exists: bool) -> LagoPlan:
    payload: dict[str, Any] = {
        "name": plan.name,
        "code": plan.code,
        "description": plan.description or None,
        "interval": plan.interval,
        "amount_cents": plan.amount_cents,
        "amount_currency": plan.currency,
        "pay_in_advance": plan.pay_in_advance,
        "trial_period": plan.trial_days,
        "charges": [
            {
                "billable_metric_id": charge.billable_metric_lago_id,
                "charge_model": charge.charge_model,
                "properties": charge.properties,
                "filters": [
                    {
                        "invoice_display_name": item.invoice_display_name,
                        "properties": item.properties,
                        "values": {key: list(values) for key, values in item.values.items()},
                    }
                    for item in charge.filters
                ],
                "prorated": charge.prorated,
            }
            for charge in plan.charges
        ],
    }
    if plan.minimum_commitment is not None:
        # Sent only when there is one: Lago removes a commitment on `{}` only, which its
        # spec refuses (amount_cents is required), and leaves it on null or no key.
        payload["minimum_commitment"] = commitment_payload(plan.minimum_commitment)
    remote = _upsert("plans", "plan", plan.code, payload, exists=exists)
    return LagoPlan(
        lago_id=lago_id_of(remote, "plan"),
        code=text_of(remote.get("code")),
        charges=tuple(
            LagoCharge(
                lago_id=text_of(charge.get("lago_id")),
                billable_metric_lago_id=text_of(charge.get("lago_billable_metric_id")),
            )
            for charge in remote.get("charges") or []
            if isinstance(charge, dict)
        ),
    )


def commitment_payload(commitment: CommitmentData) -> dict[str, Any]:
    payload: dict[str, Any] = {"amount_cents": commitment.amount_cents}
    if commitment.invoice_display_name:
        payload["invoice_display_name"] = commitment.invoice_display_name
    return payload


def _upsert(
    path: str, key: str, code: str, payload: dict[str, Any], *, exists: bool
) -> dict[str, Any]:
    if exists:
        return object_in(request("PUT", f"{path}/{segment(code)}", body={key: payload}), key)
    try:
        return object_in(request("POST", path, body={key: payload}), key)
    except ProviderError as exc:
        if exc.http_status != 422:
            raise
        # Created by an earlier attempt whose answer we lost: update it instead.
        return object_in(request("PUT", f"{path}/{segment(code)}", body={key: payload}), key)
