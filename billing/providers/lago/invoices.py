"""Lago's invoices, when Lago is the engine of record: we mirror them, collect them through
Stripe, and report the payment back (`PUT /invoices/{lago_id}`)."""

from typing import Any

from billing.providers.base import LagoBillingPeriod, LagoFee, LagoInvoice
from billing.providers.lago.client import (
    date_of,
    decimal_of,
    end_of_period,
    int_of,
    lago_id_of,
    malformed,
    object_in,
    request,
    segment,
    text_of,
    time_of,
)


def invoices_page(*, page: int, per_page: int = 100) -> tuple[list[LagoInvoice], int | None]:
    """One page of invoices, newest first, and the next page's number (None at the end)."""
    body = request("GET", "invoices", params={"page": page, "per_page": per_page})
    items = body.get("invoices")
    if not isinstance(items, list):
        raise malformed("invoices: no list")
    next_page = (body.get("meta") or {}).get("next_page")
    return [parse_invoice(item) for item in items], next_page


def invoice_get(*, lago_id: str) -> LagoInvoice:
    return parse_invoice(object_in(request("GET", f"invoices/{segment(lago_id)}"), "invoice"))


def invoice_payment_status_update(*, lago_id: str, payment_status: str) -> LagoInvoice:
    """Report a payment collected outside Lago (through our Stripe)."""
    body = request(
        "PUT", f"invoices/{segment(lago_id)}", body={"invoice": {"payment_status": payment_status}}
    )
    return parse_invoice(object_in(body, "invoice"))


def invoice_preview(*, customer_external_id: str, subscription_external_id: str) -> LagoInvoice:
    body = {
        "customer": {"external_id": customer_external_id},
        "subscriptions": {"external_ids": [subscription_external_id]},
    }
    answer = request("POST", "invoices/preview", body=body)
    return parse_invoice(object_in(answer, "invoice"), preview=True)


def invoice_finalize(*, lago_id: str) -> LagoInvoice:
    return parse_invoice(
        object_in(request("PUT", f"invoices/{segment(lago_id)}/finalize"), "invoice")
    )


def invoice_void(*, lago_id: str) -> LagoInvoice:
    return parse_invoice(object_in(request("POST", f"invoices/{segment(lago_id)}/void"), "invoice"))


def parse_invoice(obj: Any, *, preview: bool = False) -> LagoInvoice:
    if not isinstance(obj, dict):
        raise malformed("invoice: not an object")
    periods = obj.get("billing_periods") or []
    customer = obj.get("customer")
    if not isinstance(customer, dict):
        customer = {}
    return LagoInvoice(
        # A preview is not stored by Lago: whatever id it carries names nothing.
        lago_id="" if preview else lago_id_of(obj, "invoice"),
        number=text_of(obj.get("number")),
        status=text_of(obj.get("status")),
        payment_status=text_of(obj.get("payment_status")),
        currency=text_of(obj.get("currency")),
        customer_external_id=text_of(customer.get("external_id")) or None,
        fees_amount_cents=int_of(obj.get("fees_amount_cents"), "invoice fees_amount_cents"),
        taxes_amount_cents=int_of(obj.get("taxes_amount_cents"), "invoice taxes_amount_cents"),
        total_amount_cents=int_of(obj.get("total_amount_cents"), "invoice total_amount_cents"),
        coupons_amount_cents=int_of(obj.get("coupons_amount_cents"), "invoice coupons"),
        prepaid_credit_amount_cents=int_of(
            obj.get("prepaid_credit_amount_cents"), "invoice prepaid credits"
        ),
        credit_notes_amount_cents=int_of(
            obj.get("credit_notes_amount_cents"), "invoice credit notes"
        ),
        invoice_type=text_of(obj.get("invoice_type")) or "subscription",
        created_at=time_of(obj.get("created_at")),
        updated_at=time_of(obj.get("updated_at")),
        payment_due_date=date_of(obj.get("payment_due_date"), "invoice payment_due_date"),
        # Lists carry the plain object; only a fetched invoice has its periods and fees.
        detailed="billing_periods" in obj,
        billing_period=_billing_period(periods[0]) if periods else None,
        fees=tuple(_fee(fee) for fee in obj.get("fees") or []),
    )


def _billing_period(period: dict[str, Any]) -> LagoBillingPeriod:
    return LagoBillingPeriod(
        external_subscription_id=period.get("external_subscription_id"),
        start=time_of(period.get("charges_from_datetime")),
        end=end_of_period(period.get("charges_to_datetime")),
    )


def _fee(fee: dict[str, Any]) -> LagoFee:
    item = fee.get("item") or {}
    return LagoFee(
        lago_id=text_of(fee.get("lago_id")),
        item_type=text_of(item.get("type")),
        item_code=text_of(item.get("code")),
        item_name=text_of(item.get("name")),
        units=decimal_of(fee.get("units"), "fee units"),
        precise_unit_amount=decimal_of(fee.get("precise_unit_amount"), "fee unit amount"),
        amount_cents=int_of(fee.get("amount_cents"), "fee amount_cents"),
        invoice_display_name=text_of(item.get("invoice_display_name")),
        filter_display_name=text_of(item.get("filter_invoice_display_name")),
        grouped_by=_grouped_by(item.get("grouped_by")),
    )


def _grouped_by(value: Any) -> dict[str, str | None]:
    """A fee's pricing group, {key: value} (a value null where the events lacked it)."""
    if not isinstance(value, dict):
        return {}
    return {str(key): None if item is None else str(item) for key, item in value.items()}
