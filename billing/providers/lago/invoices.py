"""Lago's invoices, when Lago is the engine of record: we mirror them, collect them through
Stripe, and report the payment back (`PUT /invoices/{lago_id}`)."""

from typing import Any

from billing.providers.lago.client import request


def invoices_page(*, page: int, per_page: int = 100) -> tuple[list[dict[str, Any]], int | None]:
    """One page of invoices, newest first, and the next page's number (None at the end)."""
    body = request("GET", "invoices", params={"page": page, "per_page": per_page})
    return body["invoices"], (body.get("meta") or {}).get("next_page")


def invoice_get(*, lago_id: str) -> dict[str, Any]:
    return request("GET", f"invoices/{lago_id}")["invoice"]


def invoice_payment_status_update(*, lago_id: str, payment_status: str) -> dict[str, Any]:
    """Report a payment collected outside Lago (through our Stripe)."""
    return request(
        "PUT", f"invoices/{lago_id}", body={"invoice": {"payment_status": payment_status}}
    )["invoice"]


def invoice_preview(*, customer_external_id: str, subscription_external_id: str) -> dict[str, Any]:
    body = {
        "customer": {"external_id": customer_external_id},
        "subscriptions": {"external_ids": [subscription_external_id]},
    }
    return request("POST", "invoices/preview", body=body)["invoice"]


def invoice_finalize(*, lago_id: str) -> dict[str, Any]:
    return request("PUT", f"invoices/{lago_id}/finalize")["invoice"]


def invoice_void(*, lago_id: str) -> dict[str, Any]:
    return request("POST", f"invoices/{lago_id}/void")["invoice"]
