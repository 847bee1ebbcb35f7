"""Coupons on an invoice: one negative line per coupon taken off the fees' subtotal
(billing/coupons/services.py decides how much, in Lago's order). The invoice and its
preview add them the same way; only the invoice consumes the coupons."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from billing.coupons.services import discounts
from billing.invoicing.models import InvoiceLine
from billing.invoicing.rating import Fee


def with_coupons(
    fees: list[Fee],
    *,
    customer_id: Any,
    currency: str,
    start: datetime,
    end: datetime,
    consume: bool,
) -> list[Fee]:
    subtotal = sum(fee.amount_cents for fee in fees)
    taken = discounts(
        customer_id=customer_id, currency=currency, subtotal_cents=subtotal, consume=consume
    )
    return fees + [
        Fee(
            fee_type=InvoiceLine.FeeType.COUPON,
            description=f"Coupon {discount.name}",
            plan_code="",
            amount_cents=-discount.amount_cents,
            units=Decimal(1),
            unit_amount=Decimal(0),
            start=start,
            end=end,
            properties={
                "coupon_code": discount.coupon_code,
                "applied_coupon_id": str(discount.applied_coupon_id),
            },
        )
        for discount in taken
    ]
