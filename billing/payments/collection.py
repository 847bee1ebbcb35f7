"""Collecting a finalized invoice through Stripe, never twice.

Three guards, each enough against one way of charging twice:
- one collector per invoice at a time: a session advisory lock (the outbox also holds one
  per object), and a unique index allowing one `processing` attempt per invoice;
- an attempt is committed as `processing` *before* Stripe is called, with an idempotency
  key derived from it (`invoice:{id}:pay:{n}`) and its id in the PaymentIntent's metadata.
  A run that finds an attempt still `processing` (its worker died between Stripe's answer
  and our commit) looks the PaymentIntent up by that metadata and adopts it; only if
  Stripe holds none is it created, with the same key;
- an attempt is settled under the invoice's row lock and only once: a late webhook or a
  second run sees it settled and changes nothing.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from billing.invoicing.lago_mirror import payment_status_changed
from billing.invoicing.models import Invoice
from billing.invoicing.selectors import open_invoices
from billing.invoicing.services import invoice_ask_payment, invoice_lock, invoice_refuse
from billing.invoicing.top_ups import top_up_paid
from billing.payments.models import PaymentAttempt
from billing.providers import provider_enabled, stripe
from billing.providers.base import PaymentResult, ProviderError
from billing.sync.outbox import outbox_record, outbox_record_many, register
from core.exceptions import Conflict
from core.locks import advisory_lock, advisory_xact_lock
from core.metrics import PAYMENT_ATTEMPTS
from customers.models import PaymentMethod

logger = logging.getLogger(__name__)
A = PaymentAttempt.Status
P = Invoice.PaymentStatus
METADATA_KEY = "payment_attempt_id"
B = Invoice.BlockedReason
# An attempt left `processing` this long had its worker die: look it up again.
STALE_ATTEMPT = timedelta(minutes=10)


COLLECT = "invoice.collect"
INVOICE = Invoice._meta.label_lower


def _queue_collection(invoice_id: str) -> None:
    outbox_record(action=COLLECT, object_type=INVOICE, object_id=invoice_id)


def _collector_lock(invoice_id: str):
    return advisory_lock(f"invoice:collect:{invoice_id}")


@register(COLLECT, "stripe")
def _collect_from_outbox(object_id: str) -> None:
    invoice_collect(invoice_id=object_id)


# --- Asked for by invoicing (subscribed in PaymentsConfig.ready()) -----------------------
def collection_plan(*, invoice: Invoice, now) -> None:
    """An issued invoice is owed: collect it now, or say why it cannot be."""
    if not provider_enabled("stripe"):
        invoice.next_payment_attempt_at = None
        invoice.payment_blocked_reason = B.PAYMENTS_NOT_CONFIGURED
        return
    invoice.next_payment_attempt_at = now
    invoice.payment_blocked_reason = ""
    _queue_collection(str(invoice.pk))


def collection_plan_many(*, invoices: list[Invoice], now) -> None:
    """collection_plan() for a page of issued invoices, in one outbox INSERT."""
    enabled = provider_enabled("stripe")
    for invoice in invoices:
        invoice.next_payment_attempt_at = now if enabled else None
        invoice.payment_blocked_reason = "" if enabled else B.PAYMENTS_NOT_CONFIGURED
    if enabled:
        outbox_record_many(
            action=COLLECT, object_type=INVOICE, object_ids=[str(i.pk) for i in invoices]
        )


def collection_in_flight(*, invoice: Invoice) -> bool:
    return PaymentAttempt.objects.filter(invoice=invoice, status=A.PROCESSING).exists()


def open_invoices_count(*, customer) -> int:
    return open_invoices(customer=customer).count()


@transaction.atomic
def invoice_pay(*, invoice: Invoice) -> Invoice:
    """Retry collection now (staff or API), also after the dunning schedule gave up."""
    locked = invoice_lock(invoice)
    if locked.status != Invoice.Status.FINALIZED:
        raise invoice_refuse(locked, "pay")
    if locked.payment_status in (P.SUCCEEDED, P.REFUNDED):
        raise invoice_refuse(locked, "pay", code="invoice_paid")
    if collection_in_flight(invoice=locked):
        raise invoice_refuse(locked, "pay", code="payment_in_progress")
    if provider_enabled("stripe"):
        # Refused now, with the reason, rather than accepted and blocked a moment later.
        _refuse_uncollectable(locked)
    invoice_ask_payment(locked, timezone.now())
    locked.collection_approved = True  # explicit: not held back by the daily limit
    locked.save()
    return locked


def _default_card(customer) -> PaymentMethod | None:
    return PaymentMethod.objects.filter(
        customer=customer, is_default=True, status=PaymentMethod.Status.ACTIVE
    ).first()


def _refuse_uncollectable(invoice: Invoice) -> None:
    customer = invoice.customer
    if _default_card(customer) is None:
        raise Conflict(
            f"Cannot pay invoice {invoice}: {B.NO_DEFAULT_CARD.label} Set a default "
            "payment method first.",
            code="no_default_payment_method",
        )
    if not customer.stripe_customer_id:
        raise Conflict(
            f"Cannot pay invoice {invoice}: {B.CUSTOMER_NOT_IN_STRIPE.label} Retry in a "
            "few seconds.",
            code="stripe_customer_pending",
        )


def invoice_collect(*, invoice_id: str) -> str:
    """Bring the invoice's collection forward by one step. Safe to run any number of
    times, concurrently, and after a crash at any point."""
    with _collector_lock(invoice_id) as acquired:
        if not acquired:
            return "busy"
        attempt = PaymentAttempt.objects.filter(invoice_id=invoice_id, status=A.PROCESSING).first()
        if attempt is not None:
            if attempt.stripe_payment_intent_id:
                # Stripe was still settling it (`processing`): ask how it ended. If it has
                # not, its webhook or the next sweep will tell.
                current = stripe.payment_intent_retrieve(
                    payment_intent_id=attempt.stripe_payment_intent_id
                )
                settled = payment_attempt_settle(attempt_id=attempt.pk, result=current)
                return "waiting" if settled.status == A.PROCESSING else "refreshed"
            if not attempt.invoice.customer.stripe_customer_id:
                # Unlinked from Stripe since (a deleted customer): the charge can no longer
                # be looked up by us, and must not be risked again. Staff decide.
                _needs_review(attempt)
                return "needs review"
            found = _look_up(attempt)
            if found is not None:
                payment_attempt_settle(attempt_id=attempt.pk, result=found)
                return "adopted"
            return _charge(attempt)
        started = _start_attempt(invoice_id)
        if isinstance(started, str):
            return started
        return _charge(started)


def _needs_review(attempt: PaymentAttempt) -> None:
    PaymentAttempt.objects.filter(pk=attempt.pk).update(needs_review=True)
    Invoice.objects.filter(pk=attempt.invoice_id).update(
        next_payment_attempt_at=None, payment_blocked_reason=B.PAYMENT_OUTCOME_UNKNOWN
    )
    logger.error("payment attempt needs review", extra={"attempt_id": str(attempt.pk)})


def _start_attempt(invoice_id: str) -> PaymentAttempt | str:
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().select_related("customer").get(pk=invoice_id)
        now = timezone.now()
        if (
            invoice.status != Invoice.Status.FINALIZED
            or invoice.payment_status != P.PENDING
            or invoice.amount_due_cents <= 0
            or invoice.next_payment_attempt_at is None
            or invoice.next_payment_attempt_at > now
        ):
            return "not due"
        customer = invoice.customer
        method = _default_card(customer)
        reason, retry_at = "", None
        if method is None:
            # Left pending, with the reason for staff; setting a default card resumes it.
            reason = B.NO_DEFAULT_CARD
        elif not customer.stripe_customer_id:
            # The outbox is creating the Stripe customer: the sweep tries again soon.
            reason = B.CUSTOMER_NOT_IN_STRIPE
            retry_at = now + STALE_ATTEMPT
        if reason or method is None:
            invoice.payment_blocked_reason = reason
            invoice.next_payment_attempt_at = retry_at
            invoice.save(
                update_fields=["payment_blocked_reason", "next_payment_attempt_at", "updated_at"]
            )
            logger.info("collection blocked", extra={"invoice_id": invoice_id, "reason": reason})
            return "blocked"
        automatic = not invoice.collection_approved
        if automatic and _daily_charges(customer.pk, now) >= _daily_limit():
            # A runaway (a back-dated subscription's backlog, a loop) must not charge a
            # card dozens of times: the rest wait, blocked, until staff retry them.
            invoice.payment_blocked_reason = B.DAILY_CHARGE_LIMIT
            invoice.next_payment_attempt_at = None
            invoice.save(
                update_fields=["payment_blocked_reason", "next_payment_attempt_at", "updated_at"]
            )
            logger.warning("daily charge limit", extra={"invoice_id": invoice_id})
            return "blocked"
        number = invoice.attempts.count() + 1
        attempt = PaymentAttempt.objects.create(
            invoice=invoice,
            automatic=automatic,
            number=number,
            status=A.PROCESSING,
            amount_cents=invoice.amount_due_cents,
            currency=invoice.currency,
            idempotency_key=f"invoice:{invoice.pk}:pay:{number}",
            stripe_payment_method_id=method.stripe_payment_method_id,
        )
        invoice.next_payment_attempt_at = None
        invoice.payment_blocked_reason = ""
        invoice.collection_approved = False
        invoice.save(
            update_fields=[
                "next_payment_attempt_at",
                "payment_blocked_reason",
                "collection_approved",
                "updated_at",
            ]
        )
    return attempt


def _daily_limit() -> int:
    return int(settings.COLLECTION_MAX_CHARGES_PER_CUSTOMER_PER_DAY)


def _daily_charges(customer_id, now) -> int:
    """Automatic attempts on the customer's invoices in the last 24 h, counted under a
    per-customer lock (held to the commit), so two invoices collected at once cannot both
    take the last place."""
    advisory_xact_lock(f"customer:{customer_id}:charges", timeout=15.0)
    return PaymentAttempt.objects.filter(
        invoice__customer_id=customer_id, automatic=True, created_at__gte=now - timedelta(days=1)
    ).count()


def _look_up(attempt: PaymentAttempt) -> PaymentResult | None:
    customer = attempt.invoice.customer
    return stripe.payment_intent_find(
        stripe_customer_id=customer.stripe_customer_id,
        metadata_key=METADATA_KEY,
        metadata_value=str(attempt.pk),
    )


def _charge(attempt: PaymentAttempt) -> str:
    invoice = attempt.invoice
    try:
        result = stripe.payment_intent_create(
            stripe_customer_id=invoice.customer.stripe_customer_id,
            payment_method_id=attempt.stripe_payment_method_id,
            amount=attempt.amount_cents,
            currency=attempt.currency,
            idempotency_key=attempt.idempotency_key,
            metadata={
                METADATA_KEY: str(attempt.pk),
                "invoice_id": str(invoice.pk),
                "invoice_number": invoice.number or "",
                "attempt": str(attempt.number),
            },
        )
    except ProviderError as exc:
        if _outcome_unknown(exc):
            # The attempt stays `processing` and the next run looks it up before
            # charging. (A 409 means the same idempotency key is still being served: a
            # charge may well be under way.)
            raise
        # Stripe refused: a decline (402) may still have created a PaymentIntent that its
        # error did not name; keep its id when Stripe holds one (400/404: none was made).
        result = PaymentResult(
            id=_declined_intent_id(attempt, exc),
            status="failed",
            amount=attempt.amount_cents,
            currency=attempt.currency,
            failure_code=(exc.code or "provider_error")[:64],
            failure_message=exc.message[:500],
        )
    settled = payment_attempt_settle(attempt_id=attempt.pk, result=result)
    if settled.status == A.FAILED and result.id and result.status == "requires_action":
        # The customer could still complete it (3-D Secure) after we moved on to the
        # next attempt: cancel it, so a retry can never be the second charge.
        try:
            stripe.payment_intent_cancel(payment_intent_id=result.id)
        except ProviderError:
            logger.warning("could not cancel an abandoned PaymentIntent", extra={"pi": result.id})
    return result.status


def _declined_intent_id(attempt: PaymentAttempt, exc: ProviderError) -> str:
    if exc.http_status != 402:
        return ""
    try:
        found = _look_up(attempt)
    except ProviderError:
        return ""
    return found.id if found is not None else ""


def _outcome_unknown(exc: ProviderError) -> bool:
    return (
        exc.retryable
        or exc.http_status == 409
        or (exc.code or "").startswith("idempotency")
        or exc.code == "lock_timeout"
    )


def payment_attempt_settle(*, attempt_id, result: PaymentResult) -> PaymentAttempt:
    """Apply Stripe's answer (from the call, a lookup or a webhook) to the attempt and
    its invoice, once: a settled attempt never changes again."""
    with transaction.atomic():
        attempt = PaymentAttempt.objects.select_related("invoice").get(pk=attempt_id)
        invoice = Invoice.objects.select_for_update().get(pk=attempt.invoice_id)
        attempt = PaymentAttempt.objects.select_for_update().get(pk=attempt_id)
        now = timezone.now()
        if attempt.status != A.PROCESSING:
            if result.succeeded and attempt.status == A.FAILED:
                # We recorded a failure, yet Stripe took the money (a lost answer, a
                # late 3-D Secure): the record must follow the money.
                _late_success(invoice, attempt, result, now)
            elif result.id and not attempt.stripe_payment_intent_id:
                # Settled from an answer that did not name the PaymentIntent (a refusal
                # raised as an error): the webhook names it, keep it for staff.
                attempt.stripe_payment_intent_id = result.id
                attempt.save(update_fields=["stripe_payment_intent_id", "updated_at"])
            return attempt
        if result.id:
            attempt.stripe_payment_intent_id = result.id
        attempt.stripe_status = result.status
        if result.pending:
            attempt.save()
            return attempt
        attempt.completed_at = now
        # Settled by Stripe's own answer: nothing is left for staff to check.
        attempt.needs_review = False
        if result.succeeded:
            attempt.status = A.SUCCEEDED
            _record_payment(invoice, attempt, now)
        else:
            attempt.status = A.FAILED
            attempt.failure_code = result.failure_code or result.status
            attempt.failure_message = result.failure_message
            _schedule_retry(invoice, attempt, now)
        attempt.save()
        invoice.save()
        if invoice.engine == Invoice.Engine.LAGO:
            payment_status_changed(invoice)
    PAYMENT_ATTEMPTS.labels(outcome=attempt.status).inc()
    logger.info(
        "payment attempt settled",
        extra={
            "invoice_id": str(invoice.pk),
            "attempt": attempt.number,
            "status": attempt.status,
            "failure_code": attempt.failure_code,
        },
    )
    return attempt


def _record_payment(invoice: Invoice, attempt: PaymentAttempt, now) -> None:
    """The invoice is paid by this attempt, unless it was paid (or voided) already: then
    this charge is a duplicate, flagged on the attempt for staff to refund."""
    if invoice.payment_status == P.SUCCEEDED or invoice.status == Invoice.Status.VOIDED:
        state = "voided" if invoice.status == Invoice.Status.VOIDED else "paid"
        attempt.failure_code = "refund_needed"
        attempt.failure_message = (
            f"Invoice {invoice} was already {state} when this charge succeeded: refund "
            f"PaymentIntent {attempt.stripe_payment_intent_id}."
        )
        logger.error(
            "payment received for an invoice already settled",
            extra={"invoice_id": str(invoice.pk), "attempt": attempt.number},
        )
        return
    invoice.payment_status = P.SUCCEEDED
    invoice.paid_amount_cents += attempt.amount_cents
    invoice.paid_at = now
    invoice.next_payment_attempt_at = None
    invoice.payment_blocked_reason = ""
    top_up_paid(invoice)


def _late_success(invoice: Invoice, attempt: PaymentAttempt, result, now) -> None:
    attempt.status = A.SUCCEEDED
    attempt.stripe_status = result.status
    if result.id:
        attempt.stripe_payment_intent_id = result.id
    attempt.failure_code = attempt.failure_message = ""
    attempt.completed_at = now
    _record_payment(invoice, attempt, now)
    attempt.save()
    invoice.save()
    if invoice.engine == Invoice.Engine.LAGO:
        payment_status_changed(invoice)


def _schedule_retry(invoice: Invoice, attempt: PaymentAttempt, now) -> None:
    """Dunning: retry after each automatic failure on the configured schedule, then give
    up and leave the invoice `failed` for staff (who can still retry it). A staff or API
    retry (`automatic=False`) is no step of the schedule: when it fails, the next automatic
    try stays where the last automatic failure put it."""
    if invoice.status != Invoice.Status.FINALIZED or invoice.payment_status != P.PENDING:
        return
    automatic_failures = invoice.attempts.filter(status=A.FAILED, automatic=True).exclude(
        pk=attempt.pk
    )
    failures = automatic_failures.count() + (1 if attempt.automatic else 0)
    schedule = settings.DUNNING_SCHEDULE_DAYS
    if failures > len(schedule):
        invoice.payment_status = P.FAILED
        invoice.next_payment_attempt_at = None
        invoice.payment_blocked_reason = B.DUNNING_EXHAUSTED
        return
    invoice.payment_blocked_reason = ""
    if failures == 0:
        # A manual try before any automatic failure: the schedule starts from it.
        invoice.next_payment_attempt_at = now + timedelta(days=schedule[0])
        return
    since = now
    if not attempt.automatic:
        last = automatic_failures.order_by("-number").first()
        since = (last.completed_at if last is not None else None) or now
    invoice.next_payment_attempt_at = since + timedelta(days=schedule[failures - 1])


def attempt_of(intent: PaymentResult) -> PaymentAttempt | None:
    """Our attempt behind a PaymentIntent: by the id we put in its metadata (known even
    when we crashed before storing the PaymentIntent's id), else by that id."""
    attempt_id = intent.metadata.get(METADATA_KEY)
    if attempt_id:
        try:
            found = PaymentAttempt.objects.filter(pk=attempt_id).first()
        except (ValueError, ValidationError):
            found = None
        if found is not None:
            return found
    return PaymentAttempt.objects.filter(stripe_payment_intent_id=intent.id).first()


def invoices_collect_due(*, limit: int = 1000) -> int:
    """Beat: queue collection for invoices whose next attempt is due, and for attempts
    whose worker died mid-charge (they are looked up, never charged blindly)."""
    now = timezone.now()
    due = list(
        Invoice.objects.filter(
            status=Invoice.Status.FINALIZED,
            payment_status=P.PENDING,
            next_payment_attempt_at__lte=now,
        ).values_list("pk", flat=True)[:limit]
    )
    stale = list(
        PaymentAttempt.objects.filter(status=A.PROCESSING, updated_at__lt=now - STALE_ATTEMPT)
        # Handed to staff: looking again would only repeat the same alert.
        .exclude(needs_review=True)
        .values_list("invoice_id", flat=True)[:limit]
    )
    for invoice_id in {*due, *stale}:
        with transaction.atomic():
            _queue_collection(str(invoice_id))
    return len({*due, *stale})


def invoices_resume_for_customer(*, customer) -> int:
    """A default card was set: collection blocked for want of one resumes now."""
    resumed = 0
    # Locked, so an invoice a collector is blocking right now is seen once it is blocked.
    blocked = Invoice.objects.select_for_update().filter(
        customer=customer,
        status=Invoice.Status.FINALIZED,
        payment_status=P.PENDING,
        next_payment_attempt_at__isnull=True,
        payment_blocked_reason=B.NO_DEFAULT_CARD,
    )
    for invoice in blocked:
        invoice.next_payment_attempt_at = timezone.now()
        invoice.payment_blocked_reason = ""
        invoice.save(
            update_fields=["next_payment_attempt_at", "payment_blocked_reason", "updated_at"]
        )
        _queue_collection(str(invoice.pk))
        resumed += 1
    return resumed


def attempt_of_intent(payment_intent_id: str) -> PaymentAttempt | None:
    return PaymentAttempt.objects.filter(stripe_payment_intent_id=payment_intent_id).first()
