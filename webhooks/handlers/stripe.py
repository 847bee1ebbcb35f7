"""Stripe event handlers: keep the dj-stripe mirror and our own rows true.

Handlers gate on the event's `created` time (and a rank for states of the same second)
per Stripe object, so a late, older event never changes newer state; dj-stripe's mirror is
written by the outbox afterwards (webhooks/mirror.py), never inside the handler's
transaction. Payment methods and the default card, which our API also changes, are read
from Stripe as it is now, before the transaction and under the customer's card lock, so
neither a late event nor our own calls can be undone by an older payload.
"""

from datetime import UTC, datetime
from typing import Any

from billing.payments import collection
from billing.providers import stripe
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
}


def _mirror(event: WebhookEvent, payload: dict[str, Any]) -> tuple[Outcome, dict[str, Any]]:
    data = payload["data"]["object"]
    object_type, object_id = data.get("object", ""), data.get("id", "")
    created = datetime.fromtimestamp(int(payload.get("created", 0)), UTC)
    verdict = claim_version(
        event=event,
        object_type=object_type,
        object_id=object_id,
        version_at=created,
        rank=RANKS.get(payload["type"], 0),
    )
    if verdict == "older":
        return Outcome(applied=False, note="older than the state already applied"), data
    # "same": two events that cannot be ordered; the mirror then takes Stripe's current
    # object (read by the outbox, not here). What we apply ourselves only moves forward.
    stripe_mirror_queue(object_type=object_type, object_id=object_id, current=verdict == "same")
    return Outcome(related=[{"type": f"stripe.{object_type}", "id": object_id}]), data


def _customer_of(data: dict[str, Any]) -> Customer | None:
    stripe_customer = data.get("customer") if data.get("object") != "customer" else data.get("id")
    if isinstance(stripe_customer, dict):
        stripe_customer = stripe_customer.get("id")
    if not stripe_customer:
        return None
    return Customer.objects.filter(stripe_customer_id=stripe_customer).first()


def mirror_object(event: WebhookEvent, payload: dict[str, Any]) -> Outcome:
    outcome, data = _mirror(event, payload)
    customer = _customer_of(data)
    if customer is not None:
        outcome.customer_id = customer.pk
    return outcome


def _customer_default(payload: dict[str, Any]):
    return services.customer_default_fetch(stripe_customer_id=payload["data"]["object"]["id"])


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
    return services.payment_method_fetch(stripe_payment_method_id=payload["data"]["object"]["id"])


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
    outcome, data = _mirror(event, payload)
    customer = _customer_of(data)
    if customer is not None:
        outcome.customer_id = customer.pk
    attempt = collection.attempt_of(data)
    if attempt is None:
        outcome.note = "not one of our invoice payments"
        return outcome
    settled = collection.payment_attempt_settle(
        attempt_id=attempt.pk, result=stripe.payment_result(data)
    )
    outcome.related.append({"type": "invoice", "id": str(settled.invoice_id)})
    outcome.note = f"attempt {settled.number} is {settled.status}"
    return outcome


def charge_refunded(event: WebhookEvent, payload: dict[str, Any]) -> Outcome:
    outcome = mirror_object(event, payload)
    data = payload["data"]["object"]
    intent = data.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    if intent:
        invoice = collection.payment_refunded(
            payment_intent_id=intent,
            fully=bool(data.get("refunded"))
            or int(data.get("amount_refunded") or 0) >= int(data.get("amount") or 0) > 0,
        )
        if invoice is not None:
            outcome.related.append({"type": "invoice", "id": str(invoice.pk)})
    return outcome


def customer_deleted(event: WebhookEvent, payload: dict[str, Any]) -> Outcome:
    outcome, data = _mirror(event, payload)
    customer = _customer_of(data)
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
    "charge.refunded": charge_refunded,
}


def describe(payload: dict[str, Any]) -> tuple[str, datetime | None]:
    """The object id and the provider time of an event, stored on intake for staff."""
    data = (payload.get("data") or {}).get("object") or {}
    created = payload.get("created")
    return str(data.get("id", ""))[:255], (
        datetime.fromtimestamp(int(created), UTC) if isinstance(created, int) else None
    )
