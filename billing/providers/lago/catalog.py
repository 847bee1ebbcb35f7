"""Lago's billable metrics and plans, kept equal to ours by the outbox."""

from typing import Any

from billing.providers.base import ProviderError
from billing.providers.lago.client import request

AGGREGATIONS = {
    "count": "count_agg",
    "sum": "sum_agg",
    "max": "max_agg",
    "unique_count": "unique_count_agg",
    "latest": "latest_agg",
}


def metric_upsert(
    *, code: str, name: str, aggregation: str, field_name: str, description: str, exists: bool
) -> dict[str, Any]:
    metric: dict[str, Any] = {
        "name": name,
        "code": code,
        "aggregation_type": AGGREGATIONS[aggregation],
        "description": description or None,
    }
    if field_name:
        metric["field_name"] = field_name
    if exists:
        return request("PUT", f"billable_metrics/{code}", body={"billable_metric": metric})[
            "billable_metric"
        ]
    try:
        return request("POST", "billable_metrics", body={"billable_metric": metric})[
            "billable_metric"
        ]
    except ProviderError as exc:
        if exc.http_status != 422:
            raise
        # Created by an earlier attempt whose answer we lost: update it instead.
        return request("PUT", f"billable_metrics/{code}", body={"billable_metric": metric})[
            "billable_metric"
        ]


def plan_upsert(*, plan: dict[str, Any], exists: bool) -> dict[str, Any]:
    if exists:
        return request("PUT", f"plans/{plan['code']}", body={"plan": plan})["plan"]
    try:
        return request("POST", "plans", body={"plan": plan})["plan"]
    except ProviderError as exc:
        if exc.http_status != 422:
            raise
        return request("PUT", f"plans/{plan['code']}", body={"plan": plan})["plan"]
