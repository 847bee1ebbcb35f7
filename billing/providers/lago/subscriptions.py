"""Lago's subscriptions. `POST /subscriptions` creates, and also changes the plan of the
subscription with the same external_id; `DELETE` terminates."""

from typing import Any

from billing.providers.base import ProviderError
from billing.providers.lago.client import request


def subscription_get(*, external_id: str, status: str = "active") -> dict[str, Any] | None:
    try:
        return request("GET", f"subscriptions/{external_id}", params={"status": status})[
            "subscription"
        ]
    except ProviderError as exc:
        if exc.http_status == 404:
            return None
        raise


def subscription_create(*, subscription: dict[str, Any]) -> dict[str, Any]:
    """Creates, or changes the plan of, the subscription with this external_id (Lago
    decides upgrade or downgrade itself, by the plans' yearly amounts, as we do)."""
    return request("POST", "subscriptions", body={"subscription": subscription})["subscription"]


def subscription_update(*, external_id: str, subscription: dict[str, Any]) -> dict[str, Any]:
    """`PUT /subscriptions/{external_id}`: ending_at (a cancellation at period end),
    name, plan_overrides."""
    return request("PUT", f"subscriptions/{external_id}", body={"subscription": subscription})[
        "subscription"
    ]


def subscription_terminate(*, external_id: str, pending: bool, invoice: bool) -> dict[str, Any]:
    params = {
        # Unused prepaid time is credited, and usage so far invoiced, as a cancellation now
        # implies; a pending subscription has neither.
        "on_termination_credit_note": "credit",
        "on_termination_invoice": "generate" if invoice else "skip",
    }
    if pending:
        params["status"] = "pending"
    return request("DELETE", f"subscriptions/{external_id}", params=params)["subscription"]
