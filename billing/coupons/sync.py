"""Outbox handlers: Lago holds our coupons and who holds them (Lago applies them to the
invoices it issues when it is the engine of record)."""

from billing.coupons.models import AppliedCoupon, Coupon
from billing.providers import lago
from billing.providers.base import AppliedCouponData, CouponData
from billing.sync.outbox import register, waiting_for


@register("coupon.sync", "lago")
def coupon_sync_lago(coupon_id: str) -> None:
    coupon = Coupon.objects.get(pk=coupon_id)
    if coupon.status == Coupon.Status.TERMINATED:
        # Lago's delete is its termination: the coupon stops being applied there too.
        lago.coupon_terminate(code=coupon.code)
        return
    remote = lago.coupon_upsert(
        coupon=CouponData(
            code=coupon.code,
            name=coupon.name,
            description=coupon.description,
            coupon_type=coupon.coupon_type,
            amount_cents=coupon.amount_cents,
            amount_currency=coupon.amount_currency or None,
            percentage_rate=coupon.percentage_rate,
            frequency=coupon.frequency,
            frequency_duration=coupon.frequency_duration,
            reusable=coupon.reusable,
            expiration_at=coupon.expiration_at,
        ),
        exists=coupon.lago_id is not None,
    )
    Coupon.objects.filter(pk=coupon.pk).update(lago_id=remote.lago_id)


@register("applied_coupon.sync", "lago")
def applied_coupon_sync_lago(applied_coupon_id: str) -> None:
    applied = AppliedCoupon.objects.select_related("coupon", "customer").get(pk=applied_coupon_id)
    customer = applied.customer
    if applied.status == AppliedCoupon.Status.TERMINATED:
        if applied.lago_id is not None:
            lago.applied_coupon_terminate(
                external_customer_id=customer.external_id, lago_id=str(applied.lago_id)
            )
        return
    if applied.lago_id is not None:
        return  # Lago has no update for an application: nothing else to send
    if customer.lago_id is None:
        raise waiting_for(f"customer {customer.external_id}")
    if applied.coupon.lago_id is None:
        raise waiting_for(f"coupon {applied.coupon.code}")
    held = {
        str(lago_id)
        for lago_id in AppliedCoupon.objects.filter(
            customer=customer, coupon=applied.coupon, lago_id__isnull=False
        ).values_list("lago_id", flat=True)
    }
    # An application a try whose answer was lost made, and none of ours holds: adopt it
    # rather than discount the customer twice.
    unclaimed = [
        ref
        for ref in lago.applied_coupons(
            external_customer_id=customer.external_id, coupon_code=applied.coupon.code
        )
        if ref.lago_id not in held
    ]
    remote = (
        unclaimed[0]
        if unclaimed
        else lago.coupon_apply(
            applied=AppliedCouponData(
                external_customer_id=customer.external_id,
                coupon_code=applied.coupon.code,
                frequency=applied.frequency,
                frequency_duration=applied.frequency_duration_remaining,
                amount_cents=applied.amount_cents,
                amount_currency=applied.amount_currency or None,
                percentage_rate=applied.percentage_rate,
            )
        )
    )
    AppliedCoupon.objects.filter(pk=applied.pk).update(lago_id=remote.lago_id)
