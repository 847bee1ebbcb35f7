"""Card refunds of credit notes through Stripe, made once.

- A credit note's refund is recorded `pending` in the transaction that issues the note
  (subscribed to `refund_requested`), with an idempotency key from the note's id, and
  handed to the outbox: a broker or Stripe outage delays the refund, never loses it.
- The outbox handler refunds outside any transaction, under an advisory lock per refund.
  Before it asks Stripe for a refund it lists the PaymentIntent's refunds and adopts the
  one carrying our refund's id (a worker that died after Stripe answered), so Stripe never
  refunds twice even though a test double may ignore idempotency keys.
- Stripe's `charge.refunded` and `refund.*` webhooks settle the refund too; a refund we
  did not make (Stripe's dashboard) becomes a credit note with reason `other`, flagged
  for staff.
"""

import logging
import uuid

from django.db import transaction
from django.utils import timezone

from billing.invoicing import credit_notes
from billing.invoicing.models import CreditNote, Invoice
from billing.payments.models import PaymentAttempt, Refund
from billing.providers import provider_enabled, stripe_refunds
from billing.providers.base import RefundResult
from billing.sync.outbox import outbox_record, register
from core.exceptions import UnprocessableEntity
from core.locks import advisory_lock

logger = logging.getLogger(__name__)
REFUND = "refund.create"
REFUND_TYPE = Refund._meta.label_lower
METADATA_KEY = "refund_id"


def _paid_attempt(invoice: Invoice) -> PaymentAttempt | None:
    return (
        PaymentAttempt.objects.filter(
            invoice=invoice,
            status=PaymentAttempt.Status.SUCCEEDED,
            stripe_payment_intent_id__isnull=False,
        )
        .exclude(failure_code="refund_needed")
        .order_by("-number")
        .first()
    )


# --- Asked for by invoicing (subscribed in PaymentsConfig.ready()) -----------------------
def refund_plan(*, credit_note: CreditNote) -> None:
    """Record the refund a credit note asks for, in its transaction: refused (and the
    credit note with it) when there is no card payment to refund."""
    invoice = credit_note.invoice
    attempt = _paid_attempt(invoice)
    if attempt is None or not provider_enabled("stripe"):
        raise UnprocessableEntity(
            f"Invoice {invoice} was not paid by card through Stripe: credit the amount to the "
            "customer's balance instead of refunding it.",
            code="no_card_payment",
            attr="refund_amount_cents",
        )
    refund = Refund.objects.create(
        invoice=invoice,
        credit_note=credit_note,
        attempt=attempt,
        amount_cents=credit_note.refund_amount_cents,
        currency=credit_note.currency,
        idempotency_key=f"credit_note:{credit_note.pk}:refund",
    )
    outbox_record(action=REFUND, object_type=REFUND_TYPE, object_id=str(refund.pk))


@register(REFUND, "stripe")
def _refund_from_outbox(object_id: str) -> None:
    refund_execute(refund_id=object_id)


def refund_execute(*, refund_id: str) -> str:
    """Make the refund at Stripe if it is not made yet; settle it with Stripe's answer."""
    with advisory_lock(f"refund:{refund_id}") as acquired:
        if not acquired:
            return "busy"  # another worker is making this refund right now
        refund = Refund.objects.select_related("attempt").get(pk=refund_id)
        if refund.status != Refund.Status.PENDING:
            return "settled"
        intent_id = refund.attempt.stripe_payment_intent_id or ""
        if refund.stripe_refund_id:
            result = _find(intent_id, refund)
        else:
            result = _find(intent_id, refund) or stripe_refunds.refund_create(
                payment_intent_id=intent_id,
                amount=refund.amount_cents,
                idempotency_key=refund.idempotency_key,
                metadata={METADATA_KEY: str(refund.pk), "credit_note": str(refund.credit_note)},
            )
        if result is None:
            return "pending"
        refund_settle(refund_id=refund.pk, result=result)
        return result.status


def _find(intent_id: str, refund: Refund) -> RefundResult | None:
    for remote in stripe_refunds.refund_list(payment_intent_id=intent_id):
        if remote.metadata.get(METADATA_KEY) == str(refund.pk) or (
            refund.stripe_refund_id and remote.id == refund.stripe_refund_id
        ):
            return remote
    return None


def refund_settle(*, refund_id: uuid.UUID | str, result: RefundResult) -> Refund:
    """Apply Stripe's answer to our refund, once: a settled refund never changes."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if refund.stripe_refund_id is None and result.id:
            refund.stripe_refund_id = result.id
        if refund.status == Refund.Status.PENDING and (result.succeeded or result.failed):
            refund.status = Refund.Status.SUCCEEDED if result.succeeded else Refund.Status.FAILED
            refund.failure_message = result.failure_reason
            refund.completed_at = timezone.now()
            credit_notes.refund_settled(
                credit_note_id=refund.credit_note_id,
                succeeded=result.succeeded,
                amount_cents=refund.amount_cents,
            )
        refund.save()
    logger.info("refund settled", extra={"refund_id": str(refund.pk), "status": refund.status})
    return refund


# --- Stripe's news (webhooks) -----------------------------------------------------------
def refunds_fetch(*, payment_intent_id: str) -> list[RefundResult]:
    """Every refund Stripe holds for a PaymentIntent (called outside any transaction)."""
    return stripe_refunds.refund_list(payment_intent_id=payment_intent_id)


def refunds_apply(*, payment_intent_id: str, remote: list[RefundResult]) -> list[str]:
    """Settle our refunds from Stripe's list, and record any refund we did not make (made
    in Stripe's dashboard) as a credit note with reason `other`, flagged for staff.
    Returns what was done, for the webhook's outcome."""
    attempt = PaymentAttempt.objects.filter(stripe_payment_intent_id=payment_intent_id).first()
    if attempt is None:
        return ["not one of our payments"]
    done = []
    for result in remote:
        ours = Refund.objects.filter(stripe_refund_id=result.id).first() or (
            Refund.objects.filter(pk=result.metadata.get(METADATA_KEY, "")).first()
            if _is_uuid(result.metadata.get(METADATA_KEY))
            else None
        )
        if ours is not None:
            settled = refund_settle(refund_id=ours.pk, result=result)
            done.append(f"refund {settled.pk} {settled.status}")
        elif result.succeeded:
            done.append(_external_refund(attempt, result))
    return done


def _external_refund(attempt: PaymentAttempt, result: RefundResult) -> str:
    """A refund made in Stripe, not by us: the money left, so the books must say so. A
    credit note (reason `other`, needs review) takes it off the invoice, once per Stripe
    refund (the Refund row, unique by Stripe's id, records it)."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=attempt.invoice_id)
        if Refund.objects.filter(stripe_refund_id=result.id).exists():
            return f"refund {result.id} known"
        amount = min(result.amount, credit_notes.refundable(invoice))
        if amount <= 0:
            logger.error(
                "stripe refund beyond what was paid",
                extra={"invoice_id": str(invoice.pk), "refund": result.id},
            )
            return f"refund {result.id} beyond what was paid: check it"
        note = _credit_note_for(invoice, amount, result)
        Refund.objects.create(
            invoice=invoice,
            credit_note=note,
            attempt=attempt,
            amount_cents=amount,
            currency=invoice.currency,
            status=Refund.Status.SUCCEEDED,
            idempotency_key=f"stripe:{result.id}",
            stripe_refund_id=result.id,
            completed_at=timezone.now(),
        )
        credit_notes.refund_settled(credit_note_id=note.pk, succeeded=True, amount_cents=amount)
    return f"refund {result.id} made in Stripe: credit note {note.number} for staff to review"


def _credit_note_for(invoice: Invoice, amount: int, result: RefundResult) -> CreditNote:
    """The credit note of a refund made in Stripe: the amount is the total (tax
    included), taken off the invoice's lines in order."""
    items = credit_notes.items_for_total(invoice=invoice, total_cents=amount)
    return credit_notes.credit_note_create(
        invoice=invoice,
        reason=CreditNote.Reason.OTHER,
        items=items,
        refund_amount_cents=amount,
        description=f"Refund {result.id} made in Stripe, outside this service.",
        created_by="stripe",
        needs_review=True,
        exact_total_cents=amount,
    )


def _is_uuid(value: str | None) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
