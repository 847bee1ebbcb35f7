"""Stripe refunds: the one module besides stripe.py that calls Stripe's SDK, kept apart
so each stays a size one can read."""

from typing import Any

import stripe

from billing.providers.base import RefundResult, StripeEvent
from billing.providers.stripe import _id_of, _options, _translate_errors


@_translate_errors
def refund_create(
    *, payment_intent_id: str, amount: int, idempotency_key: str, metadata: dict[str, str]
) -> RefundResult:
    """Refund part or all of a PaymentIntent's charge. The idempotency key comes from our
    refund's id, so a retried call is the same refund at Stripe."""
    refund = stripe.Refund.create(
        payment_intent=payment_intent_id,
        amount=amount,
        metadata=metadata,
        **_options(idempotency_key=idempotency_key),
    )
    return _refund_result(refund.to_dict())


@_translate_errors
def refund_list(*, payment_intent_id: str) -> list[RefundResult]:
    """Every refund of a PaymentIntent, ours and any made in Stripe's dashboard."""
    page = stripe.Refund.list(payment_intent=payment_intent_id, limit=100, **_options())
    return [_refund_result(item.to_dict()) for item in page.auto_paging_iter()]


def _refund_result(obj: dict[str, Any]) -> RefundResult:
    return RefundResult(
        id=str(obj.get("id") or ""),
        status=str(obj.get("status") or ""),
        amount=int(obj.get("amount") or 0),
        currency=str(obj.get("currency") or "").upper(),
        payment_intent_id=_id_of(obj.get("payment_intent")),
        metadata={str(k): str(v) for k, v in (obj.get("metadata") or {}).items()},
        failure_reason=str(obj.get("failure_reason") or "")[:200],
    )


def refund_of(event: StripeEvent) -> RefundResult | None:
    """The refund a `refund.*` event is about."""
    return _refund_result(event.data) if event.object_type == "refund" else None
