"""Lago's subscriptions. `POST /subscriptions` creates, and also changes the plan of the
subscription with the same external_id; `DELETE` terminates."""

from datetime import datetime
from typing import Any

from billing.providers.base import (
    LagoSubscription,
    PlanOverrides,
    ProviderError,
    SubscriptionData,
)
from billing.providers.lago.catalog import commitment_payload
from billing.providers.lago.client import (
    iso,
    lago_id_of,
    object_in,
    request,
    segment,
    text_of,
    time_of,
)


def subscription_get(*, external_id: str, status: str = "active") -> LagoSubscription | None:
    try:
        body = request("GET", f"subscriptions/{segment(external_id)}", params={"status": status})
    except ProviderError as exc:
        if exc.http_status == 404:
            return None
        raise
    return parse_subscription(object_in(body, "subscription"))


def subscription_create(*, subscription: SubscriptionData) -> LagoSubscription:
    """Creates, or changes the plan of, the subscription with this external_id (Lago
    decides upgrade or downgrade itself, by the plans' yearly amounts, as we do)."""
    payload: dict[str, Any] = {
        "external_customer_id": subscription.external_customer_id,
        "external_id": subscription.external_id,
        "plan_code": subscription.plan_code,
        "billing_time": subscription.billing_time,
        "subscription_at": iso(subscription.subscription_at),
    }
    if subscription.name:
        payload["name"] = subscription.name
    payload.update(_overrides(subscription.overrides))
    body = request("POST", "subscriptions", body={"subscription": payload})
    return parse_subscription(object_in(body, "subscription"))


def subscription_update(
    *, external_id: str, ending_at: datetime | None, overrides: PlanOverrides | None = None
) -> LagoSubscription:
    """`PUT /subscriptions/{external_id}`: the ending (a cancellation at period end, or
    None) and the plan overrides, when there are any."""
    payload: dict[str, Any] = {"ending_at": iso(ending_at), **_overrides(overrides)}
    body = request("PUT", f"subscriptions/{segment(external_id)}", body={"subscription": payload})
    return parse_subscription(object_in(body, "subscription"))


def subscription_terminate(*, external_id: str, pending: bool, invoice: bool) -> LagoSubscription:
    params = {
        # Unused prepaid time is credited, and usage so far invoiced, as a cancellation now
        # implies; a pending subscription has neither.
        "on_termination_credit_note": "credit",
        "on_termination_invoice": "generate" if invoice else "skip",
    }
    if pending:
        params["status"] = "pending"
    body = request("DELETE", f"subscriptions/{segment(external_id)}", params=params)
    return parse_subscription(object_in(body, "subscription"))


def _overrides(overrides: PlanOverrides | None) -> dict[str, Any]:
    """`plan_overrides`, only when there is something to override."""
    if overrides is None:
        return {}
    payload: dict[str, Any] = {}
    if overrides.amount_cents is not None:
        payload["amount_cents"] = overrides.amount_cents
    if overrides.charges:
        payload["charges"] = [
            {"id": charge.charge_lago_id, "properties": charge.properties}
            for charge in overrides.charges
        ]
    if overrides.minimum_commitment is not None:
        payload["minimum_commitment"] = commitment_payload(overrides.minimum_commitment)
    return {"plan_overrides": payload} if payload else {}


def parse_subscription(obj: dict[str, Any]) -> LagoSubscription:
    return LagoSubscription(
        lago_id=lago_id_of(obj, "subscription"),
        external_id=text_of(obj.get("external_id")),
        external_customer_id=text_of(obj.get("external_customer_id")),
        plan_code=text_of(obj.get("plan_code")),
        status=text_of(obj.get("status")),
        next_plan_code=obj.get("next_plan_code") or None,
        subscription_at=time_of(obj.get("subscription_at")),
        ending_at=time_of(obj.get("ending_at")),
        created_at=time_of(obj.get("created_at")),
        started_at=time_of(obj.get("started_at")),
        canceled_at=time_of(obj.get("canceled_at")),
        terminated_at=time_of(obj.get("terminated_at")),
    )
