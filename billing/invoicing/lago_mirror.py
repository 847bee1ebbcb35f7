"""`BILLING_ENGINE=lago`: Lago issues the invoices; we mirror them, collect them through
Stripe like our own, and report the payment back with `PUT /invoices/{lago_id}`.

Mirrors come from `invoice.*` webhooks and from a periodic pull (Lago retries webhooks only
for about 25 s, so the pull is what makes the mirror complete). A mirror never rewrites a
finalized invoice's amounts: the database forbids it, and Lago does not change them either.
Each mirrored invoice is checked against our own rating of its period; a difference is
flagged for staff (`reconciliation = mismatch`), never corrected silently.
"""

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.invoicing import credit_notes, events
from billing.invoicing import services as invoices
from billing.invoicing.inputs import period_input
from billing.invoicing.models import Invoice, InvoiceLine
from billing.invoicing.rating import rate_period
from billing.invoicing.totals import totals_of_remote
from billing.providers import lago
from billing.providers.base import LagoFee, LagoInvoice, ProviderUnavailable
from billing.sync.outbox import object_type_of, outbox_record, register
from billing.wallets import services as wallets
from core.exceptions import Conflict, UnprocessableEntity
from customers.models import Customer
from subscriptions.models import Subscription, SubscriptionPeriod

logger = logging.getLogger(__name__)
S = Invoice.Status
P = Invoice.PaymentStatus
STATUSES = {"draft": S.DRAFT, "finalized": S.FINALIZED, "voided": S.VOIDED}
PAYMENT_STATUSES = {"pending", "succeeded", "failed"}
REPORT = "invoice.payment_status"


def lago_invoice_mirror(*, remote: LagoInvoice) -> Invoice | None:
    """Create or bring up to date our copy of one Lago invoice. Returns None for invoices
    we do not mirror (Lago's `failed`/`pending` generation states, unknown customers).

    A draft copy follows Lago's amounts and fees (Lago refreshes drafts during its grace
    period); a finalized copy only follows a void, or a payment recorded in Lago, and
    flags for staff what it must not apply (a void after we were paid)."""
    status = STATUSES.get(remote.status)
    if status is None:
        return None
    if not remote.detailed:
        # Lists carry the plain object: fetch the one with its periods and fees.
        remote = lago.invoice_get(lago_id=remote.lago_id)
    customer = Customer.objects.filter(external_id=remote.customer_external_id).first()
    if customer is None:
        logger.warning("lago invoice for an unknown customer", extra={"lago_id": remote.lago_id})
        return None
    with transaction.atomic():
        found = Invoice.objects.select_for_update().filter(lago_id=remote.lago_id).first()
        asked = None if found else _one_off_asked(remote, customer)
        created = found is None and asked is None
        invoice = found or asked or Invoice(engine=Invoice.Engine.LAGO, customer=customer)
        invoice.lago_id = remote.lago_id
        if created or invoice.status == S.DRAFT:
            # Contents and lines are written while our copy is still a draft; only then
            # does it take Lago's status (a finalized copy is immutable).
            asked_fees = invoice.fees_amount_cents
            _take_contents(invoice, remote, customer)
            invoice.lago_number = remote.number
            invoice.save()
            invoice.lines.all().delete()
            InvoiceLine.objects.bulk_create(_lines(invoice, remote.fees))
            if created:
                _drop_preview(invoice)
            invoice.status = status
            if status == S.VOIDED:
                invoice.mark_voided(timezone.now())
            invoice.save()
            if invoice.status == S.FINALIZED:
                _mark_period_billed(invoice)
                if invoice.invoice_type == Invoice.InvoiceType.SUBSCRIPTION:
                    _reconcile(invoice, remote)
                else:
                    _reconcile_asked(invoice, asked_fees if asked else None)
                _credits_taken(invoice)
                _collect_or_follow(invoice, remote)
                invoice.save()
        elif invoice.status == S.FINALIZED:
            _follow_finalized(invoice, remote, status)
    return invoice


def _one_off_asked(remote: LagoInvoice, customer: Customer) -> Invoice | None:
    """Our draft of a one-off invoice that Lago was asked to issue (billing/invoicing/
    lago_corrections.py): the invoice Lago issued becomes it, whichever of the handler and
    the webhook brings it first."""
    if remote.invoice_type != "one_off":
        return None
    return (
        Invoice.objects.select_for_update()
        .filter(
            engine=Invoice.Engine.LAGO,
            lago_id__isnull=True,
            status=S.DRAFT,
            invoice_type=Invoice.InvoiceType.ONE_OFF,
            customer=customer,
            fees_amount_cents=remote.fees_amount_cents,
        )
        .order_by("created_at", "id")
        .first()
    )


_INVOICE_TYPES = {"one_off": Invoice.InvoiceType.ONE_OFF, "credit": Invoice.InvoiceType.CREDIT}


def _take_contents(invoice: Invoice, remote: LagoInvoice, customer: Customer) -> None:
    period = remote.billing_period
    subscription_id = period.external_subscription_id if period else None
    invoice.invoice_type = _INVOICE_TYPES.get(remote.invoice_type, Invoice.InvoiceType.SUBSCRIPTION)
    invoice.customer = customer
    invoice.subscription = Subscription.objects.filter(external_id=subscription_id).first()
    invoice.period_start = (period and period.start) or invoice.period_start or timezone.now()
    invoice.period_end = (period and period.end) or invoice.period_end or invoice.period_start
    invoice.currency = remote.currency.upper()
    # Lago's steps, in our order (billing/invoicing/totals.py): its total_amount_cents is
    # what is left after prepaid credits and credit notes, our payable amount.
    totals_of_remote(
        fees=remote.fees_amount_cents,
        coupons=remote.coupons_amount_cents,
        taxes=remote.taxes_amount_cents,
        tax_rate=customer.tax_rate,
    ).apply_to(invoice)
    invoice.prepaid_credit_amount_cents = remote.prepaid_credit_amount_cents
    invoice.credit_balance_amount_cents = remote.credit_notes_amount_cents
    invoice.issued_at = remote.created_at or timezone.now()
    invoice.due_date = remote.payment_due_date


def _credits_taken(invoice: Invoice) -> None:
    """What Lago took off the invoice from prepaid credits and the credit balance, taken
    off our ledgers too, so the balances we show follow Lago's. Lago is the engine of
    record: if ours hold less, the difference is flagged, not invented."""
    taken = wallets.credits_consume(
        customer_id=invoice.customer_id,
        currency=invoice.currency,
        amount_cents=invoice.prepaid_credit_amount_cents,
        invoice_id=invoice.pk,
    )
    if taken:
        events.credits_consumed.publish(invoice=invoice)  # our top-up rules run as for ours
    applied = credit_notes.credit_balance_apply(
        invoice=invoice, amount_cents=invoice.credit_balance_amount_cents
    )
    short = [
        f"{what}: Lago took {theirs}, our ledger held {ours}"
        for what, theirs, ours in (
            ("prepaid credits", invoice.prepaid_credit_amount_cents, taken),
            ("credit balance", invoice.credit_balance_amount_cents, applied),
        )
        if theirs != ours
    ]
    if short:
        invoice.reconciliation = Invoice.Reconciliation.MISMATCH
        invoice.reconciliation_note = " ".join(
            filter(None, [invoice.reconciliation_note, "; ".join(short) + "."])
        )


def _reconcile_asked(invoice: Invoice, asked_fees: int | None) -> None:
    """A one-off invoice against the draft we asked Lago for."""
    if asked_fees == invoice.fees_amount_cents:
        invoice.reconciliation = Invoice.Reconciliation.MATCHED
        invoice.reconciliation_note = ""
    else:
        invoice.reconciliation = Invoice.Reconciliation.MISMATCH
        invoice.reconciliation_note = (
            "Issued in Lago without a request of ours."
            if asked_fees is None
            else f"Lago's fees are {invoice.fees_amount_cents}; we asked for {asked_fees}."
        )


def _collect_or_follow(invoice: Invoice, remote: LagoInvoice) -> None:
    if invoice.payable_amount_cents > 0 and remote.payment_status == "pending":
        invoices.invoice_ask_payment(invoice, timezone.now())
    elif remote.payment_status in PAYMENT_STATUSES:
        invoice.payment_status = remote.payment_status


def _follow_finalized(invoice: Invoice, remote: LagoInvoice, status: str) -> None:
    in_flight = invoices.payment_in_flight(invoice)
    paid_here = invoice.payment_status in (P.SUCCEEDED, P.REFUNDED)
    if status == S.VOIDED:
        if paid_here or in_flight:
            invoice.reconciliation = Invoice.Reconciliation.MISMATCH
            invoice.reconciliation_note = (
                "Voided in Lago after we collected (or while we were collecting) it: check "
                "the payment and refund it if the void stands."
            )
        else:
            invoice.mark_voided(timezone.now())
            invoices.credits_given_back(invoice)
    elif (
        remote.payment_status == "succeeded"
        and not paid_here
        and invoice.lago_payment_status_sent != "succeeded"
    ):
        if in_flight:
            invoice.reconciliation = Invoice.Reconciliation.MISMATCH
            invoice.reconciliation_note = (
                "Marked paid in Lago while our charge is in flight: check for a double payment."
            )
        else:
            # Paid outside our collection (recorded in Lago by staff): stop dunning.
            invoice.payment_status = P.SUCCEEDED
            invoice.paid_amount_cents = invoice.amount_due_cents + invoice.paid_amount_cents
            invoice.paid_at = timezone.now()
            invoice.next_payment_attempt_at = None
            invoice.payment_blocked_reason = Invoice.BlockedReason.PAID_IN_LAGO
    invoice.save()


# Lago's fee `item.type` to our line's fee_type (add-ons and the rest show as charges).
_FEE_TYPES = {"subscription": "subscription", "commitment": "commitment", "add_on": "add_on"}


def _lines(invoice: Invoice, fees: tuple[LagoFee, ...]) -> list[InvoiceLine]:
    lines = []
    for position, fee in enumerate(fees, start=1):
        lines.append(
            InvoiceLine(
                invoice=invoice,
                position=position,
                fee_type=_FEE_TYPES.get(fee.item_type, "charge"),
                description=_description(fee)[:255],
                filter=fee.filter_display_name[:255],
                grouped_by=fee.grouped_by,
                units=fee.units,
                unit_amount=fee.precise_unit_amount,
                amount_cents=fee.amount_cents,
                from_datetime=invoice.period_start,
                to_datetime=invoice.period_end,
                lago_fee_id=fee.lago_id or None,
            )
        )
    return lines


def _description(fee: LagoFee) -> str:
    """As our own lines read: the item, then its filter and pricing group, if any."""
    if fee.item_type == "commitment":  # its item is the plan; its name is the commitment's
        return fee.invoice_display_name or fee.item_name or fee.item_code
    groups = [str(v) if v is not None else "(none)" for v in fee.grouped_by.values()]
    named = ", ".join(part for part in [fee.filter_display_name, *groups] if part)
    name = fee.item_name or fee.item_code
    return f"{name} — {named}" if named else name


def _drop_preview(invoice: Invoice) -> None:
    """The preview we kept for this period gives way to the invoice Lago issued."""
    if invoice.subscription_id is None:
        return  # not a subscription's invoice: no preview stands for it
    previews = Invoice.objects.filter(
        engine=Invoice.Engine.LAGO,
        lago_id__isnull=True,
        status=S.DRAFT,
        subscription=invoice.subscription,
    )
    for preview in previews:
        preview.delete()


def _mark_period_billed(invoice: Invoice) -> None:
    if invoice.subscription_id is None:
        return
    SubscriptionPeriod.objects.filter(
        subscription_id=invoice.subscription_id,
        start__gte=invoice.period_start,
        end__lte=invoice.period_end,
        billed_at__isnull=True,
    ).update(billed_at=timezone.now())


def _reconcile(invoice: Invoice, remote: LagoInvoice) -> None:
    """Our rating of the same period against Lago's fees: equal, or flagged for staff."""
    subscription = invoice.subscription
    period = (
        SubscriptionPeriod.objects.filter(
            subscription=subscription, start=invoice.period_start, end=invoice.period_end
        ).first()
        if subscription is not None
        else None
    )
    if subscription is None or period is None:
        invoice.reconciliation = Invoice.Reconciliation.MISMATCH
        invoice.reconciliation_note = (
            "No closed period of ours matches Lago's billing period "
            f"[{invoice.period_start.isoformat()}, {invoice.period_end.isoformat()})."
        )
        return
    fees = rate_period(period_input(subscription=subscription, period=period))
    ours = sum((fee.amount_cents for fee in fees), 0)
    theirs = remote.fees_amount_cents
    if ours == theirs:
        invoice.reconciliation = Invoice.Reconciliation.MATCHED
        invoice.reconciliation_note = ""
    else:
        invoice.reconciliation = Invoice.Reconciliation.MISMATCH
        invoice.reconciliation_note = (
            f"Lago's fees are {theirs} {invoice.currency} minor units; our rating of the "
            f"same period gives {ours} (difference {theirs - ours})."
        )
        logger.warning(
            "lago invoice differs from our rating",
            extra={"invoice_id": str(invoice.pk), "lago": theirs, "ours": ours},
        )


def lago_invoices_pull(*, max_pages: int = 50) -> int:
    """Beat: mirror Lago's invoices page by page (newest first), so a missed webhook is
    made good. Returns how many invoices were mirrored."""
    if settings.BILLING_ENGINE != "lago" or not (settings.LAGO_API_URL and settings.LAGO_API_KEY):
        return 0
    mirrored, page = 0, 1
    next_page: int | None = 1
    while next_page and (page := next_page) <= max_pages:
        items, next_page = lago.invoices_page(page=page)
        for remote in items:
            if lago_invoice_mirror(remote=remote) is not None:
                mirrored += 1
    return mirrored


def payment_status_changed(invoice: Invoice) -> None:
    """Called when collection settles a Lago invoice: queue the report to Lago."""
    if invoice.engine == Invoice.Engine.LAGO and invoice.lago_id:
        outbox_record(action=REPORT, object_type=object_type_of(invoice), object_id=str(invoice.pk))


@register(REPORT, "lago")
def _report_payment_status(object_id: str) -> None:
    invoice = Invoice.objects.get(pk=object_id)
    status = invoice.payment_status if invoice.payment_status in PAYMENT_STATUSES else None
    if status is None or status == invoice.lago_payment_status_sent:
        return
    lago.invoice_payment_status_update(lago_id=str(invoice.lago_id), payment_status=status)
    Invoice.objects.filter(pk=invoice.pk).update(lago_payment_status_sent=status)


# --- The engine's operations ------------------------------------------------------------
def lago_invoice_generate(*, subscription: Subscription, start, end) -> tuple[Invoice, bool]:
    """The invoice Lago issued for the period, if mirrored; else Lago's preview of the
    current period, kept as a draft until Lago issues the real one."""
    issued = Invoice.objects.filter(subscription=subscription, lago_id__isnull=False)
    if start is not None:
        issued = issued.filter(period_start=start, period_end=end)
    found = issued.order_by("-period_start").first()
    if found is not None:
        return found, False
    lago_preview = lago.invoice_preview(
        customer_external_id=subscription.customer.external_id,
        subscription_external_id=subscription.external_id,
    )
    period = lago_preview.billing_period
    preview_start, preview_end = (period.start, period.end) if period else (None, None)
    if preview_start is None or preview_end is None:
        raise UnprocessableEntity(
            "Lago's preview names no billing period for this subscription.",
            code="preview_unavailable",
        )
    if start is not None and (preview_start, preview_end) != (start, end):
        raise UnprocessableEntity(
            "Lago has issued no invoice for that period, and previews only the current one.",
            code="period_not_invoiced",
        )
    with transaction.atomic():
        existing = (
            Invoice.objects.select_for_update()
            .filter(
                engine=Invoice.Engine.LAGO,
                lago_id__isnull=True,
                subscription=subscription,
                period_start=preview_start,
            )
            .first()
        )
        preview = existing or Invoice(
            engine=Invoice.Engine.LAGO,
            customer=subscription.customer,
            subscription=subscription,
            period_start=preview_start,
            period_end=preview_end,
            currency=lago_preview.currency.upper(),
        )
        totals_of_remote(
            fees=lago_preview.fees_amount_cents,
            coupons=lago_preview.coupons_amount_cents,
            taxes=lago_preview.taxes_amount_cents,
            tax_rate=subscription.customer.tax_rate,
        ).apply_to(preview)
        try:
            with transaction.atomic():
                preview.save()
        except IntegrityError:
            # A racing request kept the same preview first.
            raced = Invoice.objects.get(
                engine=Invoice.Engine.LAGO,
                lago_id__isnull=True,
                status=S.DRAFT,
                subscription=subscription,
                period_start=preview_start,
            )
            return raced, False
        preview.lines.all().delete()
        InvoiceLine.objects.bulk_create(_lines(preview, lago_preview.fees))
    return preview, existing is None


def lago_invoice_finalize(*, invoice: Invoice) -> Invoice:
    if not invoice.lago_id or invoice.status != S.DRAFT:
        # A preview is not an invoice: Lago issues the real one at the period's end.
        raise invoices.invoice_refuse(invoice, "finalize")
    mirrored = lago_invoice_mirror(remote=lago.invoice_finalize(lago_id=str(invoice.lago_id)))
    if mirrored is None:
        raise Conflict(
            "Lago has not finalized the invoice yet (it is still being generated); try "
            "again shortly.",
            code="finalization_pending",
        )
    return mirrored


def lago_invoice_void(*, invoice: Invoice) -> Invoice:
    if not invoice.lago_id:
        # A preview: nothing issued at Lago, dropped here.
        return invoices.invoice_void(invoice=invoice)
    # Our refusals first (paid, payment in flight), then Lago, then ours, in one transaction
    # holding the invoice's row: a collector waits, and if Lago refuses or is unreachable
    # nothing changed here. One of the README's request-path provider calls.
    return invoices.invoice_void(
        invoice=invoice, remote_void=lambda: _void_in_lago(str(invoice.lago_id))
    )


def _void_in_lago(lago_id: str) -> None:
    try:
        lago.invoice_void(lago_id=lago_id)
    except ProviderUnavailable:
        # The void may have happened with its answer lost: ask Lago before giving up, so
        # an invoice Lago has voided is not left collectable here. If Lago cannot say,
        # the caller gets 503 and the invoice.voided webhook (or the pull) applies it.
        if lago.invoice_get(lago_id=lago_id).status != "voided":
            raise
