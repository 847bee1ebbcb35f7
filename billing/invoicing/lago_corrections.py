"""Outbox handlers: Lago holds our add-ons, issues the one-off invoices asked of it, and
holds the credit notes of the invoices it issued (when it is the engine of record).

A credit note is computed here, against the lines mirrored from Lago (each keeping
Lago's fee id), and then made in Lago with the same items and the same split; Lago's
total is compared with ours and a difference is flagged for staff, never corrected.
Refunds stay ours: we collected the payment through our Stripe, so we refund it there.
"""

import logging

from django.db import transaction

from billing.invoicing.lago_mirror import lago_invoice_mirror
from billing.invoicing.models import AddOn, CreditNote, Invoice
from billing.providers import lago
from billing.providers.base import (
    AddOnData,
    CreditNoteData,
    LagoInvoice,
    OneOffFeeData,
    ProviderError,
)
from billing.sync.outbox import register, waiting_for

logger = logging.getLogger(__name__)
ADD_ON_SYNC = "add_on.sync"
ADD_ON_DELETE = "add_on.delete"
CREDIT_NOTE_SYNC = "credit_note.sync"
ONE_OFF_CREATE = "invoice.one_off"


@register(ADD_ON_SYNC, "lago")
def add_on_sync_lago(add_on_id: str) -> None:
    add_on = AddOn.objects.filter(pk=add_on_id).first()
    if add_on is None:
        return  # deleted since: ADD_ON_DELETE takes it out of Lago
    remote = lago.add_on_upsert(
        add_on=AddOnData(
            code=add_on.code,
            name=add_on.name,
            invoice_display_name=add_on.invoice_display_name,
            description=add_on.description,
            amount_cents=add_on.amount_cents,
            amount_currency=add_on.amount_currency,
        ),
        exists=add_on.lago_id is not None,
    )
    AddOn.objects.filter(pk=add_on.pk).update(lago_id=remote.lago_id)


@register(ADD_ON_DELETE, "lago")
def add_on_delete_lago(code: str) -> None:
    if not AddOn.objects.filter(code=code).exists():  # not made again under the same code
        lago.add_on_delete(code=code)


# --- One-off invoices ---------------------------------------------------------------------
def _one_off_fees(invoice: Invoice) -> tuple[OneOffFeeData, ...]:
    fees = []
    for line in invoice.lines.order_by("position"):
        code = str(line.properties.get("add_on_code") or "")
        add_on = AddOn.objects.filter(code=code).first()
        if add_on is None or add_on.lago_id is None:
            raise waiting_for(f"add-on {code}")
        fees.append(
            OneOffFeeData(
                add_on_code=code,
                units=line.units.normalize(),
                unit_amount_cents=int(line.properties.get("unit_amount_cents") or 0),
                description=line.description,
            )
        )
    return tuple(fees)


def _made_by_a_lost_answer(invoice: Invoice) -> LagoInvoice | None:
    """A one-off invoice Lago issued for this customer since ours was asked for, with our
    fees, that no invoice of ours mirrors: the answer to an earlier try was lost."""
    candidates = lago.one_off_invoices(
        external_customer_id=invoice.customer.external_id, since=invoice.created_at
    )
    mirrored = {
        str(lago_id)
        for lago_id in Invoice.objects.filter(
            lago_id__in=[c.lago_id for c in candidates]
        ).values_list("lago_id", flat=True)
    }
    for candidate in candidates:
        if (
            candidate.lago_id not in mirrored
            and candidate.fees_amount_cents == invoice.fees_amount_cents
        ):
            return candidate
    return None


@register(ONE_OFF_CREATE, "lago")
def one_off_invoice_create_lago(invoice_id: str) -> None:
    invoice = Invoice.objects.select_related("customer").get(pk=invoice_id)
    if invoice.lago_id is not None or invoice.status != Invoice.Status.DRAFT:
        return  # Lago issued it and the mirror adopted our draft
    if invoice.customer.lago_id is None:
        raise waiting_for(f"customer {invoice.customer.external_id}")
    fees = _one_off_fees(invoice)
    remote = _made_by_a_lost_answer(invoice) or lago.invoice_one_off_create(
        external_customer_id=invoice.customer.external_id, currency=invoice.currency, fees=fees
    )
    lago_invoice_mirror(remote=remote)


# --- Credit notes -------------------------------------------------------------------------
def _flag(note: CreditNote, why: str) -> None:
    CreditNote.objects.filter(pk=note.pk).update(needs_review=True)
    logger.warning(
        "credit note flagged for review", extra={"credit_note_id": str(note.pk), "reason": why}
    )


@register(CREDIT_NOTE_SYNC, "lago")
def credit_note_sync_lago(credit_note_id: str) -> None:
    note = CreditNote.objects.select_related("invoice", "customer").get(pk=credit_note_id)
    invoice = note.invoice
    if invoice.engine != Invoice.Engine.LAGO or invoice.lago_id is None:
        return  # a credit note of one of our own invoices is ours alone
    lago_id = str(note.lago_id) if note.lago_id else None
    if lago_id is None:
        remote = lago.credit_note_find(
            external_customer_id=note.customer.external_id, credit_note_id=str(note.pk)
        )
        if remote is None:
            if note.status == CreditNote.Status.VOIDED:
                return  # voided before it reached Lago: nothing to make there
            if note.refund_amount_cents and invoice.lago_payment_status_sent != "succeeded":
                # Lago refuses a refund on an invoice it does not know is paid.
                raise waiting_for(f"the payment of invoice {invoice.lago_number}")
            items = list(
                note.items.select_related("invoice_line").values_list(
                    "invoice_line__lago_fee_id", "amount_cents"
                )
            )
            if any(fee_id is None for fee_id, _ in items):
                _flag(note, "a credited line has no Lago fee id (mirrored before we kept it)")
                return
            remote = lago.credit_note_create(
                credit_note=CreditNoteData(
                    credit_note_id=str(note.pk),
                    external_customer_id=note.customer.external_id,
                    invoice_lago_id=str(invoice.lago_id),
                    reason=note.reason,
                    description=note.description,
                    items=tuple((str(fee_id), int(amount)) for fee_id, amount in items),
                    refund_amount_cents=note.refund_amount_cents,
                    credit_amount_cents=note.credit_amount_cents,
                    offset_amount_cents=note.offset_amount_cents,
                )
            )
        with transaction.atomic():
            CreditNote.objects.filter(pk=note.pk).update(
                lago_id=remote.lago_id, lago_number=remote.number
            )
        lago_id = remote.lago_id
        if remote.total_amount_cents != note.total_amount_cents:
            _flag(
                note,
                f"Lago's total is {remote.total_amount_cents}, ours {note.total_amount_cents}",
            )
    if note.status == CreditNote.Status.VOIDED:
        try:
            lago.credit_note_void(lago_id=lago_id)
        except ProviderError as error:
            if error.http_status != 405:  # Lago's answer to a note already voided
                raise
