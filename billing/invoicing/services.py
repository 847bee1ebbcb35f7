"""Invoices: generate one per closed subscription period, finalize (number it), void, and
ask for payment. Each transition locks the invoice row and refuses an illegal move with
409, naming the state."""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.invoicing import credit_notes, events
from billing.invoicing.coupon_lines import with_coupons
from billing.invoicing.inputs import Catalog, period_input
from billing.invoicing.models import Invoice, InvoiceLine
from billing.invoicing.numbering import next_number
from billing.invoicing.rating import Fee, rate_period
from billing.invoicing.totals import totals_of
from billing.wallets import services as wallets
from core.exceptions import Conflict, UnprocessableEntity
from subscriptions.models import (
    Subscription,
    SubscriptionPeriod,
)

logger = logging.getLogger(__name__)
S = Invoice.Status
P = Invoice.PaymentStatus


def invoice_refuse(invoice: Invoice, action: str, code: str = "invalid_transition") -> Conflict:
    return Conflict(
        f"Cannot {action} invoice {invoice}: it is {invoice.status}"
        + (f", payment {invoice.payment_status}" if invoice.status == S.FINALIZED else "")
        + ".",
        code=code,
    )


def invoice_lock(invoice: Invoice) -> Invoice:
    return Invoice.objects.select_for_update().get(pk=invoice.pk)


# --- Generation -------------------------------------------------------------------------
def closed_period(
    *, subscription: Subscription, start: datetime | None, end: datetime | None
) -> SubscriptionPeriod:
    """The closed period asked for, or the last one. Only a closed period can be invoiced:
    an open one's usage is not final."""
    periods = SubscriptionPeriod.objects.filter(subscription=subscription)
    if start is None and end is None:
        # The last period, not a fee billed ahead (the billing run invoices those at once).
        period = (
            periods.exclude(reason=SubscriptionPeriod.Reason.ADVANCE).order_by("-start").first()
        )
        if period is None:
            raise UnprocessableEntity(
                f"Subscription '{subscription.external_id}' has no closed period yet.",
                code="no_closed_period",
            )
        return period
    if start is None or end is None:
        raise ValidationError({"period_end" if end is None else "period_start": "Give both."})
    period = periods.filter(start=start, end=end).first()
    if period is None:
        known = ", ".join(
            f"[{p.start.isoformat()}, {p.end.isoformat()})" for p in periods.order_by("-start")[:3]
        )
        raise UnprocessableEntity(
            f"[{start.isoformat()}, {end.isoformat()}) is not a closed billing period of "
            f"'{subscription.external_id}'. Latest closed periods: {known or 'none'}.",
            code="period_not_closed",
        )
    return period


@transaction.atomic
def invoice_generate_for_period(
    *, period: SubscriptionPeriod, catalog: Catalog | None = None
) -> tuple[Invoice, bool]:
    """The draft invoice of a closed period, created once: (invoice, created). A second
    call, or a racing one, gets the same invoice (the unique index decides, not a read).

    The subscription row is locked FOR UPDATE first: usage recording holds it FOR KEY
    SHARE, so an event is either committed before the rating reads usage, or sees this
    period invoiced and is refused (`period_closed`); none falls in between."""
    catalog = catalog or Catalog()
    subscription = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("customer", "plan")
        .get(pk=period.subscription_id)
    )
    existing = _live_invoice(period)
    if existing is not None:
        return existing, False
    customer = subscription.customer
    fees = with_coupons(
        rate_period(period_input(subscription=subscription, period=period, catalog=catalog)),
        customer_id=customer.pk,
        currency=subscription.plan.currency,
        start=period.start,
        end=period.end,
        consume=True,
    )
    invoice = Invoice(
        customer=customer,
        subscription=subscription,
        period_start=period.start,
        period_end=period.end,
        currency=subscription.plan.currency,
    )
    totals_of(fees=fees, tax_rate=customer.tax_rate).apply_to(invoice)
    try:
        with transaction.atomic():
            invoice.save(force_insert=True)
    except IntegrityError:
        # Another request created it between our read and our insert.
        raced = _live_invoice(period)
        if raced is None:
            raise
        return raced, False
    InvoiceLine.objects.bulk_create(invoice_lines(invoice, fees, catalog))
    SubscriptionPeriod.objects.filter(pk=period.pk).update(billed_at=timezone.now())
    logger.info(
        "invoice generated",
        extra={"invoice_id": str(invoice.pk), "subscription": subscription.external_id},
    )
    return invoice, True


def _live_invoice(period: SubscriptionPeriod) -> Invoice | None:
    return Invoice.objects.filter(
        subscription_id=period.subscription_id,
        period_start=period.start,
        period_end=period.end,
        engine=Invoice.Engine.LOCAL,
        status__in=[S.DRAFT, S.FINALIZED],
    ).first()


def invoice_lines(invoice: Invoice, fees: list[Fee], catalog: Catalog) -> list[InvoiceLine]:
    return [
        InvoiceLine(
            invoice=invoice,
            position=position,
            fee_type=fee.fee_type,
            description=fee.description[:255],
            plan_code=fee.plan_code,
            metric=catalog.metrics_by_code.get(fee.metric_code),
            charge_model=fee.charge_model,
            properties=fee.properties,
            filter=fee.filter[:255],
            grouped_by=fee.grouped_by,
            units=fee.units,
            unit_amount=fee.unit_amount,
            amount_cents=fee.amount_cents,
            from_datetime=fee.start,
            to_datetime=fee.end,
        )
        for position, fee in enumerate(fees, start=1)
    ]


# --- Transitions ------------------------------------------------------------------------
@transaction.atomic
def invoice_finalize(*, invoice: Invoice) -> Invoice:
    """Issue the draft: give it the issuer's next number (gapless: the sequence row is
    locked with the invoice and rolls back with it), date it, and ask for payment."""
    locked = invoice_lock(invoice)
    if locked.status != S.DRAFT:
        raise invoice_refuse(locked, "finalize")
    now = timezone.now()
    locked.issuer = settings.INVOICE_ISSUER
    locked.number = next_number(locked.issuer, settings.INVOICE_NUMBER_PREFIX or locked.issuer)
    locked.status = S.FINALIZED
    locked.issued_at = now
    locked.due_date = (now + timedelta(days=settings.INVOICE_DUE_DAYS)).date()
    if locked.total_amount_cents > 0 and locked.invoice_type != Invoice.InvoiceType.CREDIT:
        # Prepaid credits, then the credit balance (credit notes' credits), go before the
        # card: the totals' order (billing/invoicing/totals.py).
        locked.prepaid_credit_amount_cents = wallets.credits_consume(
            customer_id=locked.customer_id,
            currency=locked.currency,
            amount_cents=locked.payable_amount_cents,
            invoice_id=locked.pk,
        )
        locked.credit_balance_amount_cents = credit_notes.credit_balance_apply(
            invoice=locked, amount_cents=locked.payable_amount_cents
        )
    if locked.total_amount_cents >= 0 and locked.payable_amount_cents == 0:
        locked.payment_status = P.SUCCEEDED  # nothing to collect
        locked.paid_at = now
    elif locked.total_amount_cents < 0:
        # We owe the customer (credits beyond the fees): never charged; what is owed goes
        # to their prepaid credits, taken off their next invoices.
        wallets.credit_from_invoice(
            customer=locked.customer,
            currency=locked.currency,
            amount_cents=-locked.total_amount_cents,
            invoice_id=locked.pk,
        )
        locked.payment_status = P.SUCCEEDED
        locked.paid_at = now
        locked.next_payment_attempt_at = None
        locked.payment_blocked_reason = ""
    else:
        invoice_ask_payment(locked, now)
    locked.save(
        update_fields=[
            "issuer",
            "number",
            "status",
            "issued_at",
            "due_date",
            "payment_status",
            "paid_at",
            "next_payment_attempt_at",
            "payment_blocked_reason",
            "prepaid_credit_amount_cents",
            "credit_balance_amount_cents",
            "updated_at",
        ]
    )
    if locked.prepaid_credit_amount_cents:
        events.credits_consumed.publish(invoice=locked)
    logger.info("invoice finalized", extra={"invoice_id": str(locked.pk), "number": locked.number})
    return locked


def invoice_ask_payment(invoice: Invoice, now: datetime) -> None:
    """The invoice is owed: the collector (subscribed to `payment_requested`) plans it."""
    invoice.payment_status = P.PENDING
    invoice.next_payment_attempt_at = None
    invoice.payment_blocked_reason = ""
    events.payment_requested.publish(invoice=invoice, now=now)


@transaction.atomic
def invoice_void(*, invoice: Invoice, remote_void: Callable[[], object] | None = None) -> Invoice:
    """Void the invoice. `remote_void` voids it at its engine first (Lago), once our own
    refusals have passed and while the row is locked: it fails, nothing changes here."""
    locked = invoice_lock(invoice)
    if locked.status == S.VOIDED:
        raise invoice_refuse(locked, "void")
    if (
        locked.payment_status in (P.SUCCEEDED, P.PARTIALLY_REFUNDED, P.REFUNDED)
        and locked.total_amount_cents > 0
    ):
        raise invoice_refuse(locked, "void", code="invoice_paid")
    if locked.credited_amount_cents:
        # Its credit notes moved money (a refund, a credit, an offset): void those first.
        raise invoice_refuse(locked, "void", code="invoice_credited")
    if payment_in_flight(locked):
        raise invoice_refuse(locked, "void", code="payment_in_progress")
    if remote_void is not None:
        remote_void()
    locked.mark_voided(timezone.now())
    locked.save()
    credits_given_back(locked)
    return locked


def credits_given_back(invoice: Invoice) -> None:
    """A voided invoice gives back the prepaid credits and the credit balance it used, as
    Lago's Invoices::VoidService does (coupons are not given back, in Lago either)."""
    wallets.credits_recredit(invoice_id=invoice.pk)
    credit_notes.credit_balance_recredit(invoice=invoice)


def payment_in_flight(invoice: Invoice) -> bool:
    return any(events.payment_in_flight.publish(invoice=invoice))
