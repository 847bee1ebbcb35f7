"""Credit notes: correct an issued invoice, whole or per line, and send the money back
to the card (refund), to the customer's credit balance (credit) or off what the invoice
still owes (offset).

The amounts, in order, each rounded once (half-up):
    items            the chosen amounts of the invoice's lines, each within what is
                     still creditable on its line
    coupons          the invoice's coupons in proportion: items * coupons / fees
    subtotal         items - coupons
    taxes            subtotal * the invoice's tax rate
    total            subtotal + taxes, split by staff into refund + credit + offset
A credit note that leaves nothing creditable on the invoice takes exactly what is left
of the invoice's total, so rounding never leaves a cent behind nor credits one too many.

The database holds the limits too (an item never beyond its line, the invoice never
credited beyond its total, a refund never beyond what was paid), so two credit notes
racing on one invoice cannot exceed it: the second waits for the invoice's row lock and
then sees the first.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from billing.invoicing import events
from billing.invoicing.models import (
    CreditApplication,
    CreditNote,
    CreditNoteItem,
    Invoice,
    InvoiceLine,
)
from billing.invoicing.numbering import next_number
from billing.invoicing.totals import taxes_on
from core.exceptions import Conflict, UnprocessableEntity

logger = logging.getLogger(__name__)
S = Invoice.Status
P = Invoice.PaymentStatus


@dataclass(frozen=True)
class ItemRequest:
    """One line to credit: by amount (minor units, before tax) or by units (the line's
    unit price times them, rounded half-up once)."""

    line_id: int
    amount_cents: int | None = None
    units: Decimal | None = None


@dataclass(frozen=True)
class CreditNoteEstimate:
    items: list[tuple[InvoiceLine, int]]
    coupons_amount_cents: int
    subtotal_amount_cents: int
    taxes_amount_cents: int
    total_amount_cents: int
    refundable_amount_cents: int
    offsettable_amount_cents: int


def refundable(invoice: Invoice) -> int:
    """What may still go back to the card: paid, less refunded or being refunded."""
    pending = sum(
        note.refund_amount_cents
        for note in invoice.credit_notes.filter(refund_status=CreditNote.RefundStatus.PENDING)
    )
    return max(invoice.paid_amount_cents - invoice.refunded_amount_cents - pending, 0)


def _minor(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _item_amount(line: InvoiceLine, request: ItemRequest, currency: str) -> int:
    if (request.amount_cents is None) == (request.units is None):
        raise UnprocessableEntity(
            f"Line {line.position}: give amount_cents or units, not both.",
            code="invalid_item",
            attr="items",
        )
    if request.units is not None:
        if line.units <= 0:
            raise UnprocessableEntity(
                f"Line {line.position} has no units to credit: credit an amount.",
                code="invalid_item",
                attr="items",
            )
        if request.units <= 0 or request.units > line.units:
            raise UnprocessableEntity(
                f"Line {line.position}: units must be above 0 and at most "
                f"{line.units.normalize()}.",
                code="invalid_item",
                attr="items",
            )
        # The line's own price per unit, so crediting all its units credits all of it.
        return _minor(Decimal(line.amount_cents) * request.units / line.units)
    return int(request.amount_cents or 0)


def _check_invoice(invoice: Invoice) -> None:
    if invoice.status != S.FINALIZED:
        raise Conflict(
            f"Invoice {invoice} is {invoice.status}: only an issued invoice takes a credit note.",
            code="invoice_not_finalized",
        )
    if invoice.engine == Invoice.Engine.LAGO and (
        invoice.lago_id is None or invoice.lines.filter(lago_fee_id__isnull=True).exists()
    ):
        # The credit note is made in Lago too, naming Lago's fees: lines mirrored before
        # we kept Lago's fee ids cannot be named.
        raise UnprocessableEntity(
            f"Invoice {invoice} was mirrored from Lago without its fee ids: issue its "
            "credit notes in Lago.",
            code="lago_fees_unknown",
        )


def estimate(*, invoice: Invoice, items: Sequence[ItemRequest] | None) -> CreditNoteEstimate:
    """The credit note these items would make, with nothing written. `items=None` is the
    whole invoice: everything still creditable on every line."""
    _check_invoice(invoice)
    lines = {line.pk: line for line in invoice.lines.all()}
    chosen: list[tuple[InvoiceLine, int]] = []
    if items is None:
        chosen = [
            (line, line.creditable_amount_cents)
            for line in lines.values()
            if line.creditable_amount_cents > 0 and line.fee_type != InvoiceLine.FeeType.COUPON
        ]
    else:
        seen: set[int] = set()
        for request in items:
            line = lines.get(request.line_id)
            if line is None:
                raise UnprocessableEntity(
                    f"Invoice {invoice} has no line {request.line_id}.",
                    code="unknown_line",
                    attr="items",
                )
            if line.pk in seen:
                raise UnprocessableEntity(
                    f"Line {line.position} is listed twice.", code="invalid_item", attr="items"
                )
            seen.add(line.pk)
            amount = _item_amount(line, request, invoice.currency)
            if amount <= 0 or amount > line.creditable_amount_cents:
                raise UnprocessableEntity(
                    f"Line {line.position} ({line.description}): {amount} is not creditable; "
                    f"{line.creditable_amount_cents} is left to credit on it.",
                    code="exceeds_creditable",
                    attr="items",
                )
            chosen.append((line, amount))
    items_total = sum(amount for _, amount in chosen)
    if items_total <= 0:
        raise UnprocessableEntity(
            f"Nothing is left to credit on invoice {invoice}.",
            code="nothing_to_credit",
            attr="items",
        )
    fees = invoice.fees_amount_cents
    coupons = _minor(Decimal(items_total) * invoice.coupons_amount_cents / fees) if fees > 0 else 0
    subtotal = items_total - coupons
    taxes = taxes_on(subtotal, invoice.tax_rate)
    left_after = sum(line.creditable_amount_cents for line in lines.values()) - items_total
    remaining_total = max(invoice.total_amount_cents, 0) - invoice.credited_amount_cents
    if left_after <= 0 or subtotal + taxes > remaining_total:
        # The last credit note takes what is left, to the cent.
        remaining_subtotal = invoice.subtotal_amount_cents - sum(
            note.subtotal_amount_cents for note in invoice.credit_notes.all()
        )
        subtotal = min(subtotal, max(remaining_subtotal, 0))
        taxes = max(remaining_total - subtotal, 0)
    return CreditNoteEstimate(
        items=chosen,
        coupons_amount_cents=coupons,
        subtotal_amount_cents=subtotal,
        taxes_amount_cents=taxes,
        total_amount_cents=subtotal + taxes,
        refundable_amount_cents=refundable(invoice),
        offsettable_amount_cents=invoice.amount_due_cents,
    )


def split(
    invoice: Invoice,
    quote: CreditNoteEstimate,
    refund: int | None,
    credit: int | None,
    offset: int | None,
) -> tuple[int, int, int]:
    """Where the money goes. Unsaid: off what is still owed first, then back to the card,
    and the rest to the credit balance."""
    total = quote.total_amount_cents
    if refund is None and credit is None and offset is None:
        offset = min(total, quote.offsettable_amount_cents)
        refund = min(total - offset, quote.refundable_amount_cents)
        credit = total - offset - refund
    refund, credit, offset = refund or 0, credit or 0, offset or 0
    if min(refund, credit, offset) < 0:
        raise UnprocessableEntity(
            "Refund, credit and offset amounts cannot be negative.", code="invalid_split"
        )
    if refund > quote.refundable_amount_cents:
        raise UnprocessableEntity(
            f"Only {quote.refundable_amount_cents} {invoice.currency} minor units of invoice "
            f"{invoice} can be refunded (paid less refunded).",
            code="refund_exceeds_paid",
            attr="refund_amount_cents",
        )
    if offset > quote.offsettable_amount_cents:
        raise UnprocessableEntity(
            f"Invoice {invoice} owes {quote.offsettable_amount_cents}: no more can be offset.",
            code="offset_exceeds_due",
            attr="offset_amount_cents",
        )
    if refund + credit + offset != total:
        raise UnprocessableEntity(
            f"refund_amount_cents + credit_amount_cents + offset_amount_cents must be the "
            f"credit note's total, {total} (they are {refund + credit + offset}).",
            code="invalid_split",
        )
    return refund, credit, offset


@transaction.atomic
def credit_note_create(
    *,
    invoice: Invoice,
    reason: str,
    items: Sequence[ItemRequest] | None = None,
    refund_amount_cents: int | None = None,
    credit_amount_cents: int | None = None,
    offset_amount_cents: int | None = None,
    description: str = "",
    created_by: str = "",
    needs_review: bool = False,
    exact_total_cents: int | None = None,
) -> CreditNote:
    """Issue a credit note on an issued invoice (see the module's docstring).
    `exact_total_cents` fixes the total (tax included) when the money already moved, as
    for a refund made in Stripe: the tax is then what the total leaves after the items."""
    if reason not in CreditNote.Reason.values:
        raise UnprocessableEntity(
            f"'{reason}' is not a credit note reason: one of "
            f"{', '.join(CreditNote.Reason.values)}.",
            code="invalid_reason",
            attr="reason",
        )
    locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
    quote = estimate(invoice=locked, items=items)
    if exact_total_cents is not None and exact_total_cents != quote.total_amount_cents:
        remaining = max(locked.total_amount_cents, 0) - locked.credited_amount_cents
        if not quote.subtotal_amount_cents <= exact_total_cents <= remaining:
            raise UnprocessableEntity(
                f"A credit note of {exact_total_cents} does not fit invoice {locked}.",
                code="exceeds_creditable",
            )
        quote = replace(
            quote,
            taxes_amount_cents=exact_total_cents - quote.subtotal_amount_cents,
            total_amount_cents=exact_total_cents,
        )
    refund, credit, offset = split(
        locked, quote, refund_amount_cents, credit_amount_cents, offset_amount_cents
    )
    if offset and any(events.payment_in_flight.publish(invoice=locked)):
        # A charge for the old amount due may be succeeding right now: offsetting under it
        # would leave the payment unrecordable. Wait for it, then credit or refund.
        raise Conflict(
            f"A payment of invoice {locked} is in flight: offset it once the payment settles.",
            code="payment_in_progress",
        )
    now = timezone.now()
    issuer = settings.INVOICE_ISSUER
    note = CreditNote.objects.create(
        number=next_number(f"{issuer}:CN", f"{settings.INVOICE_NUMBER_PREFIX or issuer}-CN"),
        issuer=issuer,
        invoice=locked,
        customer_id=locked.customer_id,
        currency=locked.currency,
        reason=reason,
        description=description[:2000],
        subtotal_amount_cents=quote.subtotal_amount_cents,
        coupons_amount_cents=quote.coupons_amount_cents,
        taxes_amount_cents=quote.taxes_amount_cents,
        total_amount_cents=quote.total_amount_cents,
        refund_amount_cents=refund,
        credit_amount_cents=credit,
        offset_amount_cents=offset,
        balance_amount_cents=credit,
        refund_status=CreditNote.RefundStatus.PENDING if refund else CreditNote.RefundStatus.NONE,
        needs_review=needs_review,
        issued_at=now,
        created_by=created_by[:255],
    )
    CreditNoteItem.objects.bulk_create(
        CreditNoteItem(credit_note=note, invoice_line=line, amount_cents=amount)
        for line, amount in quote.items
    )
    for line, amount in quote.items:
        InvoiceLine.objects.filter(pk=line.pk).update(
            credited_amount_cents=F("credited_amount_cents") + amount
        )
    locked.credited_amount_cents += note.total_amount_cents
    locked.offset_amount_cents += offset
    if offset and locked.amount_due_cents == 0 and locked.payment_status in (P.PENDING, P.FAILED):
        # Nothing is owed any more: collection stops.
        locked.payment_status = P.SUCCEEDED
        locked.paid_at = locked.paid_at or now
        locked.next_payment_attempt_at = None
        locked.payment_blocked_reason = ""
    locked.save()
    if refund and not needs_review:
        events.refund_requested.publish(credit_note=note)
    logger.info(
        "credit note issued",
        extra={"credit_note": note.number, "invoice_id": str(locked.pk), "reason": reason},
    )
    return note


@transaction.atomic
def credit_note_void(*, credit_note: CreditNote) -> CreditNote:
    """Void a credit note that sent nothing to the card and whose credit is unused: its
    amounts become creditable again."""
    invoice = Invoice.objects.select_for_update().get(pk=credit_note.invoice_id)
    note = CreditNote.objects.select_for_update().get(pk=credit_note.pk)
    if note.status == CreditNote.Status.VOIDED:
        raise Conflict(f"Credit note {note} is voided already.", code="invalid_transition")
    if note.refund_amount_cents:
        raise Conflict(
            f"Credit note {note} refunded money to the card: it cannot be voided.",
            code="credit_note_refunded",
        )
    if note.balance_amount_cents != note.credit_amount_cents:
        raise Conflict(
            f"Credit note {note}'s credit was used on a later invoice: it cannot be voided.",
            code="credit_note_used",
        )
    if note.offset_amount_cents and invoice.payment_status != P.PENDING:
        raise Conflict(
            f"Credit note {note} settled what invoice {invoice} owed: it cannot be voided.",
            code="credit_note_settled_invoice",
        )
    for item in note.items.all():
        InvoiceLine.objects.filter(pk=item.invoice_line_id).update(
            credited_amount_cents=F("credited_amount_cents") - item.amount_cents
        )
    invoice.credited_amount_cents -= note.total_amount_cents
    invoice.offset_amount_cents -= note.offset_amount_cents
    invoice.save(update_fields=["credited_amount_cents", "offset_amount_cents", "updated_at"])
    note.status = CreditNote.Status.VOIDED
    note.voided_at = timezone.now()
    note.balance_amount_cents = 0
    note.save(update_fields=["status", "voided_at", "balance_amount_cents", "updated_at"])
    return note


def credit_balance(*, customer_id: UUID | str, currency: str) -> int:
    """The customer's credit balance in a currency: what is left of its credit notes'
    credits."""
    balances: list[int] = list(
        CreditNote.objects.filter(
            customer_id=customer_id,
            currency=currency,
            status=CreditNote.Status.ISSUED,
            balance_amount_cents__gt=0,
        ).values_list("balance_amount_cents", flat=True)
    )
    return sum(balances)


def credit_balance_apply(*, invoice: Invoice, amount_cents: int) -> int:
    """Take up to `amount_cents` off the customer's credit balance for this invoice, oldest
    credit first, each note locked (two finalizations cannot spend one credit twice).
    Called inside the finalizing transaction; returns what was applied."""
    applied = 0
    notes = (
        CreditNote.objects.select_for_update()
        .filter(
            customer_id=invoice.customer_id,
            currency=invoice.currency,
            status=CreditNote.Status.ISSUED,
            balance_amount_cents__gt=0,
        )
        .exclude(invoice_id=invoice.pk)
        .order_by("issued_at", "id")
    )
    for note in notes:
        take = min(note.balance_amount_cents, amount_cents - applied)
        if take <= 0:
            break
        note.balance_amount_cents -= take
        note.save(update_fields=["balance_amount_cents", "updated_at"])
        CreditApplication.objects.create(credit_note=note, invoice=invoice, amount_cents=take)
        applied += take
    return applied


def credit_balance_recredit(*, invoice: Invoice) -> int:
    """What an invoice being voided took off the credit balance, given back to the notes
    it came from (Lago's CreditNotes::RecreditService), each recorded as a negative
    application; a note voided since keeps nothing. Once, however often asked."""
    given = 0
    taken = (
        CreditApplication.objects.filter(invoice=invoice)
        .values("credit_note_id")
        .annotate(net=Sum("amount_cents"))
        .filter(net__gt=0)
        .order_by("credit_note_id")
    )
    for row in taken:
        note = CreditNote.objects.select_for_update().get(pk=row["credit_note_id"])
        if note.status != CreditNote.Status.ISSUED:
            continue
        note.balance_amount_cents += row["net"]
        note.save(update_fields=["balance_amount_cents", "updated_at"])
        CreditApplication.objects.create(
            credit_note=note, invoice=invoice, amount_cents=-row["net"]
        )
        given += row["net"]
    return given


def items_for_total(*, invoice: Invoice, total_cents: int) -> list[ItemRequest]:
    """Line items whose credit note totals `total_cents` tax included: the subtotal is
    the total without the invoice's tax rate, before coupons in proportion, taken off the
    lines in order, each up to what is left to credit on it."""
    subtotal = _minor(Decimal(total_cents) * 100 / (100 + Decimal(invoice.tax_rate)))
    fees, coupons = invoice.fees_amount_cents, invoice.coupons_amount_cents
    wanted = _minor(Decimal(subtotal) * fees / (fees - coupons)) if fees > coupons else subtotal
    items: list[ItemRequest] = []
    for line in invoice.lines.exclude(fee_type=InvoiceLine.FeeType.COUPON).order_by("position"):
        take = min(line.creditable_amount_cents, wanted)
        if take > 0:
            items.append(ItemRequest(line_id=line.pk, amount_cents=take))
            wanted -= take
    return items


def refund_settled(*, credit_note_id: UUID | str, succeeded: bool, amount_cents: int) -> None:
    """The card refund of a credit note is over (billing.payments calls this): a refunded
    amount shows on the invoice and moves its payment status."""
    with transaction.atomic():
        note = CreditNote.objects.select_for_update().get(pk=credit_note_id)
        if note.refund_status != CreditNote.RefundStatus.PENDING:
            return
        invoice = Invoice.objects.select_for_update().get(pk=note.invoice_id)
        note.refund_status = (
            CreditNote.RefundStatus.SUCCEEDED if succeeded else CreditNote.RefundStatus.FAILED
        )
        note.save(update_fields=["refund_status", "updated_at"])
        if succeeded:
            record_refund(invoice, amount_cents)
            invoice.save()


def record_refund(invoice: Invoice, amount_cents: int) -> None:
    """Add a refund to the invoice (locked by the caller) and move its payment status."""
    invoice.refunded_amount_cents += amount_cents
    if invoice.refunded_amount_cents >= invoice.paid_amount_cents > 0:
        invoice.payment_status = P.REFUNDED
    elif invoice.refunded_amount_cents > 0:
        invoice.payment_status = P.PARTIALLY_REFUNDED
