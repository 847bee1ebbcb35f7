"""Coupons: create, terminate, apply to a customer, and take them off an invoice as Lago
does (getlago/lago-api app/services/credits/applied_coupons_service.rb and
applied_coupon_service.rb):

- the customer's active applied coupons in the order they were applied (oldest first),
  each on what the previous ones left of the subtotal before tax, never below zero;
- fixed amount: its amount, or what is left of a `once` coupon (carried to the next
  invoice until spent); percentage: the rate of the base, rounded half-up once;
- a fixed coupon applies only to invoices in its currency;
- `once` ends after its use (a fixed one when its amount is spent), `recurring` after N
  invoices, `forever` never; an expired or terminated coupon stops applying.

`discounts(consume=False)` is the preview's read; the invoice's generation consumes, in
its own transaction, with the customer's applied coupons locked, so two invoices cannot
spend one coupon twice.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.coupons.models import AppliedCoupon, Coupon
from core.exceptions import Conflict, UnprocessableEntity
from customers.models import Customer

F = Coupon.Frequency


@dataclass(frozen=True)
class Discount:
    applied_coupon_id: UUID
    coupon_code: str
    name: str
    amount_cents: int


def _usable(coupon: Coupon, now: datetime) -> bool:
    return coupon.status == Coupon.Status.ACTIVE and (
        coupon.expiration_at is None or coupon.expiration_at > now
    )


@transaction.atomic
def coupon_create(**data: Any) -> Coupon:
    coupon_type = data.get("coupon_type")
    if coupon_type == Coupon.CouponType.FIXED_AMOUNT and not (
        data.get("amount_cents") and data.get("amount_currency")
    ):
        raise UnprocessableEntity(
            "A fixed_amount coupon needs amount_cents and amount_currency.",
            code="invalid_coupon",
            attr="amount_cents",
        )
    if coupon_type == Coupon.CouponType.PERCENTAGE and not data.get("percentage_rate"):
        raise UnprocessableEntity(
            "A percentage coupon needs percentage_rate.",
            code="invalid_coupon",
            attr="percentage_rate",
        )
    if data.get("frequency") == F.RECURRING and not data.get("frequency_duration"):
        raise UnprocessableEntity(
            "A recurring coupon needs frequency_duration (the number of invoices).",
            code="invalid_coupon",
            attr="frequency_duration",
        )
    if Coupon.objects.filter(code=data["code"]).exists():
        raise Conflict(f"A coupon with code '{data['code']}' exists.", code="coupon_exists")
    if coupon_type == Coupon.CouponType.PERCENTAGE:
        data["amount_cents"], data["amount_currency"] = None, ""
    else:
        data["percentage_rate"] = None
    if data.get("frequency") != F.RECURRING:
        data["frequency_duration"] = None
    return Coupon.objects.create(**data)


@transaction.atomic
def coupon_terminate(*, coupon: Coupon) -> Coupon:
    """No new customer gets it, and it stops applying to those who hold it."""
    locked = Coupon.objects.select_for_update().get(pk=coupon.pk)
    if locked.status == Coupon.Status.TERMINATED:
        raise Conflict(f"Coupon '{locked.code}' is terminated already.", code="invalid_transition")
    now = timezone.now()
    locked.status, locked.terminated_at = Coupon.Status.TERMINATED, now
    locked.save(update_fields=["status", "terminated_at", "updated_at"])
    AppliedCoupon.objects.filter(coupon=locked, status=AppliedCoupon.Status.ACTIVE).update(
        status=AppliedCoupon.Status.TERMINATED, terminated_at=now
    )
    return locked


@transaction.atomic
def coupon_apply(
    *,
    customer: Customer,
    coupon: Coupon,
    amount_cents: int | None = None,
    percentage_rate: Decimal | None = None,
) -> AppliedCoupon:
    """Give the customer the coupon (optionally with its own amount or rate). The coupon
    row is locked, so racing applications cannot pass its redemption limit."""
    locked = Coupon.objects.select_for_update().get(pk=coupon.pk)
    now = timezone.now()
    if locked.status != Coupon.Status.ACTIVE:
        raise UnprocessableEntity(
            f"Coupon '{locked.code}' is terminated.", code="coupon_terminated", attr="coupon_code"
        )
    if not _usable(locked, now):
        raise UnprocessableEntity(
            f"Coupon '{locked.code}' expired on {locked.expiration_at:%Y-%m-%d}.",
            code="coupon_expired",
            attr="coupon_code",
        )
    holders = AppliedCoupon.objects.filter(coupon=locked)
    if locked.redemption_limit is not None and holders.count() >= locked.redemption_limit:
        raise UnprocessableEntity(
            f"Coupon '{locked.code}' was applied {locked.redemption_limit} time(s), its limit.",
            code="redemption_limit_reached",
            attr="coupon_code",
        )
    if holders.filter(customer=customer, status=AppliedCoupon.Status.ACTIVE).exists() and (
        not locked.reusable
    ):
        raise Conflict(
            f"Customer '{customer.external_id}' holds coupon '{locked.code}' already.",
            code="coupon_already_applied",
        )
    fixed = locked.coupon_type == Coupon.CouponType.FIXED_AMOUNT
    if fixed and locked.amount_currency != customer.currency:
        raise UnprocessableEntity(
            f"Coupon '{locked.code}' is in {locked.amount_currency}; customer "
            f"'{customer.external_id}' is billed in {customer.currency}.",
            code="currency_mismatch",
            attr="coupon_code",
        )
    if (amount_cents is not None and not fixed) or (percentage_rate is not None and fixed):
        raise UnprocessableEntity(
            "Override a fixed coupon's amount_cents or a percentage coupon's percentage_rate.",
            code="invalid_override",
        )
    amount = amount_cents if amount_cents is not None else locked.amount_cents
    return AppliedCoupon.objects.create(
        coupon=locked,
        customer=customer,
        amount_cents=amount,
        amount_currency=locked.amount_currency,
        percentage_rate=percentage_rate if percentage_rate is not None else locked.percentage_rate,
        frequency=locked.frequency,
        frequency_duration_remaining=locked.frequency_duration,
        amount_cents_remaining=amount if fixed and locked.frequency == F.ONCE else None,
    )


@transaction.atomic
def applied_coupon_terminate(*, applied_coupon: AppliedCoupon) -> AppliedCoupon:
    locked = AppliedCoupon.objects.select_for_update().get(pk=applied_coupon.pk)
    if locked.status == AppliedCoupon.Status.TERMINATED:
        raise Conflict("This applied coupon is terminated already.", code="invalid_transition")
    locked.status, locked.terminated_at = AppliedCoupon.Status.TERMINATED, timezone.now()
    locked.save(update_fields=["status", "terminated_at", "updated_at"])
    return locked


def _amount(applied: AppliedCoupon, base: int) -> int:
    if applied.coupon.coupon_type == Coupon.CouponType.PERCENTAGE:
        rate = applied.percentage_rate or Decimal(0)
        share = (Decimal(base) * rate / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return min(int(share), base)
    available = (
        applied.amount_cents_remaining
        if applied.amount_cents_remaining is not None
        else applied.amount_cents or 0
    )
    return min(available, base)


def discounts(
    *, customer_id: Any, currency: str, subtotal_cents: int, consume: bool
) -> list[Discount]:
    """The coupons taken off a subtotal (see the module's docstring). With `consume`, in
    the caller's transaction: what each used is recorded on its applied coupon."""
    now = timezone.now()
    applied = (
        AppliedCoupon.objects.select_related("coupon")
        .filter(customer_id=customer_id, status=AppliedCoupon.Status.ACTIVE)
        .filter(Q(amount_currency="") | Q(amount_currency=currency))
        .order_by("created_at", "id")
    )
    if consume:
        applied = applied.select_for_update(of=("self",))
    base = subtotal_cents
    taken: list[Discount] = []
    for each in applied:
        if base <= 0:
            break
        if not _usable(each.coupon, now):
            continue
        amount = _amount(each, base)
        if amount <= 0:
            continue
        base -= amount
        taken.append(
            Discount(
                applied_coupon_id=each.pk,
                coupon_code=each.coupon.code,
                name=each.coupon.name,
                amount_cents=amount,
            )
        )
        if consume:
            _consume(each, amount, now)
    return taken


def _consume(applied: AppliedCoupon, amount: int, now: datetime) -> None:
    """Lago's AppliedCouponService: a recurring coupon loses a period, a fixed `once`
    coupon its amount; each ends when nothing is left, a percentage `once` at once."""
    ends = False
    if applied.frequency == F.RECURRING:
        remaining = max((applied.frequency_duration_remaining or 0) - 1, 0)
        applied.frequency_duration_remaining = remaining
        ends = remaining == 0
    elif applied.frequency == F.ONCE:
        if applied.amount_cents_remaining is not None:
            applied.amount_cents_remaining -= amount
            ends = applied.amount_cents_remaining <= 0
        else:
            ends = True
    if ends:
        applied.status, applied.terminated_at = AppliedCoupon.Status.TERMINATED, now
    applied.save()
