"""Stripe event handlers: keep the dj-stripe mirror and our own rows true.

Handlers gate on the event's `created` time (and a rank for states of the same second)
per Stripe object, so a late, older event never changes newer state; dj-stripe's mirror is
written by the outbox afterwards (webhooks/mirror.py), never inside the handler's
transaction. Payment methods and the default card, which our API also changes, are read
from Stripe as it is now, before the transaction and under the customer's card lock, so
neither a late event nor our own calls can be undone by an older payload.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from billing.payments import collection, refunds
from billing.providers import stripe, stripe_refunds
from billing.providers.base import ProviderError, RefundResult, StripeEvent
from customers import services
from customers.models import Customer
from webhooks.handlers.base import FetchThenApply, Handler, Outcome
from webhooks.mirror import stripe_mirror_queue
from webhooks.models import WebhookEvent
from webhooks.versioning import claim_version

# Within one second, later lifecycle states win: a deletion or a success is final.
RANKS = {
    "customer.created": 0,
    "customer.updated": 1,
    "customer.deleted": 9,
    "setup_intent.created": 0,
    "setup_intent.setup_failed": 1,
    "setup_intent.succeeded": 9,
    "payment_intent.created": 0,
    "payment_intent.processing": 1,
    "payment_intent.payment_failed": 2,
    "payment_intent.canceled": 8,
    "payment_intent.succeeded": 9,
    "charge.succeeded": 0,
    "charge.failed": 0,
    "charge.refunded": 5,
    "refund.created": 0,
    "refund.updated": 1,
    "refund.failed": 2,
}
EPOCH = datetime.fromtimestamp(0, UTC)


def _mirror(event: WebhookEvent, stripe_event: StripeEvent) -> Outcome:
    verdict = claim_version(
        event=event,
        object_type=stripe_event.object_type,
        object_id=stripe_event.object_id,
        # An event without a time orders before every other.
        version_at=stripe_event.created or EPOCH,
        rank=RANKS.get(stripe_event.type, 0),
    )
    if verdict == "older":
        return Outcome(applied=False, note="older than the state already applied")
    # "same": two events that cannot be ordered; the mirror then takes Stripe's current
    # object (read by the outbox, not here). What we apply ourselves only moves forward.
    stripe_mirror_queue(
        object_type=stripe_event.object_type,
        object_id=stripe_event.object_id,
        current=verdict == "same",
    )
    return Outcome(
        related=[{"type": f"stripe.{stripe_event.object_type}", "id": stripe_event.object_id}]
    )


def _customer_of(stripe_event: StripeEvent) -> Customer | None:
    if not stripe_event.customer_id:
        return None
    return Customer.objects.filter(stripe_customer_id=stripe_event.customer_id).first()


def _mirror_with_customer(event: WebhookEvent, stripe_event: StripeEvent) -> Outcome:
    outcome = _mirror(event, stripe_event)
    customer = _customer_of(stripe_event)
    if customer is not None:
        outcome.customer_id = customer.pk
    return outcome


def mirror_object(event: WebhookEvent, payload: dict[str, Any]) -> Outcome:
    return _mirror_with_customer(event, stripe.parse_event(payload))


def _customer_default(payload: dict[str, Any]):
    return services.customer_default_fetch(stripe_customer_id=stripe.parse_event(payload).object_id)


def _customer_updated(event: WebhookEvent, payload: dict[str, Any], state) -> Outcome:
    outcome = mirror_object(event, payload)
    # The default card as Stripe held it when read under the customer's card lock (still
    # held), so a late event cannot undo a set-default made through our API since.
    customer = services.customer_default_apply(state=state)
    if customer is not None:
        outcome.customer_id = customer.pk
    return outcome


customer_updated = FetchThenApply(fetch=_customer_default, apply=_customer_updated)


def _payment_method(payload: dict[str, Any]):
    return services.payment_method_fetch(
        stripe_payment_method_id=stripe.parse_event(payload).object_id
    )


def _payment_method_changed(event: WebhookEvent, payload: dict[str, Any], state) -> Outcome:
    """Attach, detach, expiry updates: apply the method as Stripe holds it now."""
    object_id = state.current.id
    method = services.payment_method_apply(state=state)
    stripe_mirror_queue(object_type="payment_method", object_id=object_id, current=True)
    related = [{"type": "stripe.payment_method", "id": object_id}]
    if method is not None:
        related.append({"type": "payment_method", "id": str(method.pk)})
    return Outcome(
        customer_id=method.customer_id if method else None,
        related=related,
        note="applied Stripe's current state",
    )


payment_method_changed = FetchThenApply(fetch=_payment_method, apply=_payment_method_changed)


def payment_intent_changed(event: WebhookEvent, payload: dict[str, Any]) -> Outcome:
    """Settle the payment attempt the PaymentIntent belongs to (once: a settled attempt
    never changes, so a late or repeated event is harmless)."""
    stripe_event = stripe.parse_event(payload)
    outcome = _mirror_with_customer(event, stripe_event)
    intent = stripe_event.payment_intent
    attempt = collection.attempt_of(intent) if intent is not None else None
    if intent is None or attempt is None:
        outcome.note = "not one of our invoice payments"
        return outcome
    settled = collection.payment_attempt_settle(attempt_id=attempt.pk, result=intent)
    outcome.related.append({"type": "invoice", "id": str(settled.invoice_id)})
    outcome.note = f"attempt {settled.number} is {settled.status}"
    return outcome


def _intent_of(stripe_event: StripeEvent) -> str | None:
    if stripe_event.charge is not None:
        return stripe_event.charge.payment_intent_id
    refund = stripe_refunds.refund_of(stripe_event)
    return refund.payment_intent_id if refund is not None else None


@contextmanager
def _refunds(payload: dict[str, Any]) -> Iterator[list[RefundResult]]:
    """The PaymentIntent's refunds as Stripe holds them now, read before the transaction:
    the event may be late, and a dashboard refund is only in Stripe."""
    intent_id = _intent_of(stripe.parse_event(payload))
    yield refunds.refunds_fetch(payment_intent_id=intent_id) if intent_id else []


def _refunds_changed(event: WebhookEvent, payload: dict[str, Any], remote) -> Outcome:
    """Settle our refunds from Stripe's list; a refund made in Stripe's dashboard becomes
    a credit note (reason `other`) flagged for staff."""
    stripe_event = stripe.parse_event(payload)
    outcome = _mirror_with_customer(event, stripe_event)
    intent_id = _intent_of(stripe_event)
    if intent_id:
        outcome.note = "; ".join(refunds.refunds_apply(payment_intent_id=intent_id, remote=remote))
        attempt = collection.attempt_of_intent(intent_id)
        if attempt is not None:
            outcome.related.append({"type": "invoice", "id": str(attempt.invoice_id)})
    return outcome


refunds_changed = FetchThenApply(fetch=_refunds, apply=_refunds_changed)


def customer_deleted(event: WebhookEvent, payload: dict[str, Any]) -> Outcome:
    stripe_event = stripe.parse_event(payload)
    outcome = _mirror(event, stripe_event)
    customer = _customer_of(stripe_event)
    if customer is not None and outcome.applied:
        services.customer_stripe_deleted(customer=customer)
        outcome.customer_id = customer.pk
        outcome.note = "Stripe customer deleted; link cleared"
    return outcome


HANDLERS: dict[str, Handler] = {
    "customer.updated": customer_updated,
    "customer.deleted": customer_deleted,
    "payment_method.attached": payment_method_changed,
    "payment_method.detached": payment_method_changed,
    "payment_method.updated": payment_method_changed,
    "payment_method.automatically_updated": payment_method_changed,
    "setup_intent.succeeded": mirror_object,
    "payment_intent.succeeded": payment_intent_changed,
    "payment_intent.payment_failed": payment_intent_changed,
    "payment_intent.processing": payment_intent_changed,
    "payment_intent.canceled": payment_intent_changed,
    "charge.refunded": refunds_changed,
    "refund.created": refunds_changed,
    "refund.updated": refunds_changed,
    "refund.failed": refunds_changed,
}


def describe(payload: dict[str, Any]) -> tuple[str, datetime | None]:
    """The object id and the provider time of an event, stored on intake for staff."""
    try:
        stripe_event = stripe.parse_event(payload)
    except ProviderError:
        # Stored all the same, for staff to see; its handler will say what is wrong.
        return "", None
    return stripe_event.object_id[:255], stripe_event.created
