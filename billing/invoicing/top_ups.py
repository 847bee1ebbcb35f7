"""Buying prepaid credits (Lago's paid wallet transactions): a top-up is an invoice of
type `credit` with one `credit` line, issued and collected like any invoice; once it is
paid, its credits reach the wallet, once. Credits are never applied to a top-up itself."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.invoicing.models import Invoice, InvoiceLine
from billing.invoicing.services import invoice_finalize
from billing.invoicing.totals import totals_from
from billing.wallets import services as wallets
from billing.wallets.models import Wallet
from core.exceptions import Conflict, UnprocessableEntity


@transaction.atomic
def top_up_invoice_create(*, wallet: Wallet, credits: Decimal) -> Invoice:
    """The invoice of `credits` for the wallet, issued: no tax (prepaid credits are taxed
    when they pay for fees, as Lago does)."""
    locked = Wallet.objects.select_for_update().select_related("customer").get(pk=wallet.pk)
    if locked.status != Wallet.Status.ACTIVE:
        raise Conflict(f"Wallet {locked.pk} is terminated.", code="wallet_terminated")
    cents = wallets.cents_of(locked, credits)
    if cents <= 0:
        raise UnprocessableEntity(
            "The credits bought are worth less than one minor unit.",
            code="invalid_credits",
            attr="credits",
        )
    now = timezone.now()
    invoice = Invoice(
        customer=locked.customer,
        invoice_type=Invoice.InvoiceType.CREDIT,
        period_start=now,
        period_end=now,
        currency=locked.currency,
    )
    totals_from(fees_cents=cents, coupons_cents=0, tax_rate=Decimal(0)).apply_to(invoice)
    invoice.save(force_insert=True)
    InvoiceLine.objects.create(
        invoice=invoice,
        position=1,
        fee_type=InvoiceLine.FeeType.CREDIT,
        description=f"Prepaid credits: {credits.normalize()} ({locked.name or 'wallet'})",
        properties={"wallet_id": str(locked.pk), "credits": str(credits)},
        units=credits,
        unit_amount=locked.rate_amount,
        amount_cents=cents,
        from_datetime=now,
        to_datetime=now,
    )
    return invoice_finalize(invoice=invoice)


def _top_up_outstanding(wallet: Wallet) -> bool:
    return Invoice.objects.filter(
        invoice_type=Invoice.InvoiceType.CREDIT,
        status=Invoice.Status.FINALIZED,
        payment_status__in=[Invoice.PaymentStatus.PENDING, Invoice.PaymentStatus.FAILED],
        lines__properties__wallet_id=str(wallet.pk),
    ).exists()


def top_ups_below_threshold(*, invoice: Invoice) -> list[Invoice]:
    """Lago's threshold rule, run when an invoice has taken credits off the customer's
    wallets (in its issuing transaction): each active wallet left at or below its
    threshold gets its granted credits and a top-up invoice of its paid credits, unless a
    top-up of it is still unpaid (one at a time, however many invoices follow)."""
    made = []
    wallets_ruled = Wallet.objects.select_for_update().filter(
        customer_id=invoice.customer_id,
        currency=invoice.currency,
        status=Wallet.Status.ACTIVE,
        top_up_threshold_credits__isnull=False,
    )
    for wallet in wallets_ruled.order_by("created_at", "id"):
        threshold = wallet.top_up_threshold_credits
        assert threshold is not None  # the filter above
        if wallets.credits_of(wallet, wallet.balance_cents) > threshold:
            continue
        if _top_up_outstanding(wallet):
            continue
        if wallet.top_up_granted_credits:
            wallets.wallet_grant(
                wallet=wallet, credits=wallet.top_up_granted_credits, note="automatic top-up"
            )
        if wallet.top_up_paid_credits:
            made.append(top_up_invoice_create(wallet=wallet, credits=wallet.top_up_paid_credits))
    return made


def top_up_paid(invoice: Invoice) -> None:
    """Called when an invoice is paid (in the settling transaction): a top-up credits its
    wallet, once."""
    if invoice.invoice_type != Invoice.InvoiceType.CREDIT:
        return
    line = invoice.lines.filter(fee_type=InvoiceLine.FeeType.CREDIT).first()
    if line is None or "wallet_id" not in line.properties:
        return
    wallets.wallet_purchased(
        wallet_id=str(line.properties.get("wallet_id")),
        invoice_id=invoice.pk,
        amount_cents=line.amount_cents,
    )
