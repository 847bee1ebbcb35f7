"""Lago event handlers. Lago's objects carry `updated_at` (or status timestamps), which
order its deliveries; an older state never overwrites a newer one."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from django.conf import settings
from django.utils import timezone

from billing.invoicing.lago_mirror import lago_invoice_mirror
from billing.providers import lago
from billing.providers.base import LagoSubscription, LagoWebhook, ProviderError
from customers.models import Customer
from subscriptions import services as subscription_services
from subscriptions.models import Subscription
from webhooks.handlers.base import FetchThenApply, Handler, Outcome
from webhooks.models import UsageEventError, WebhookEvent
from webhooks.versioning import claim_version

SUBSCRIPTION_RANKS = {"pending": 0, "active": 1, "canceled": 2, "terminated": 3}
INVOICE_RANKS = {"draft": 0, "finalized": 1, "voided": 2, "failed": 1, "pending": 1}
PAYMENT_RANKS = {"pending": 0, "failed": 1, "succeeded": 2}
T = TypeVar("T")


def _latest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _gate(event: WebhookEvent, object_type: str, object_id: str, at: datetime | None, rank: int):
    if at is None:
        at = event.received_at
    return claim_version(
        event=event, object_type=object_type, object_id=object_id, version_at=at, rank=rank
    )


def _required(webhook: LagoWebhook, remote: T | None) -> T:
    """The object a handler acts on; its absence is a webhook we cannot read, failed at once
    (its body is kept, so it can be replayed once we can)."""
    if remote is None:
        raise ProviderError(
            "lago",
            f"malformed {webhook.webhook_type} webhook: object_type {webhook.object_type!r}",
            code="malformed",
        )
    return remote


def customer_changed(event: WebhookEvent, payload: dict[str, Any]) -> Outcome:
    webhook = lago.parse_webhook(payload)
    remote = _required(webhook, webhook.customer)
    customer = Customer.objects.filter(external_id=remote.external_id).first()
    verdict = _gate(
        event, "customer", remote.lago_id, _latest(remote.updated_at, remote.created_at), 0
    )
    if verdict == "older":
        return Outcome(applied=False, note="older than the state already applied")
    if customer is None:
        return Outcome(applied=False, note="no local customer with this external_id")
    if str(customer.lago_id or "") != remote.lago_id:
        Customer.objects.filter(pk=customer.pk).update(lago_id=remote.lago_id)
    return Outcome(customer_id=customer.pk, related=[{"type": "customer", "id": str(customer.pk)}])


@contextmanager
def _lago_live_record(payload: dict[str, Any]) -> Iterator[bool | None]:
    """Before the transaction: when Lago says a subscription we follow was terminated,
    ask whether it still holds a live record (a plan change in flight ends the old one)."""
    remote = lago.parse_webhook(payload).subscription
    if settings.BILLING_ENGINE != "lago" or remote is None or remote.status != "terminated":
        yield None
        return
    yield bool(
        lago.subscription_get(external_id=remote.external_id)
        or lago.subscription_get(external_id=remote.external_id, status="pending")
    )


def _subscription_changed(
    event: WebhookEvent, payload: dict[str, Any], live_in_lago: bool | None
) -> Outcome:
    webhook = lago.parse_webhook(payload)
    remote = _required(webhook, webhook.subscription)
    at = _latest(remote.terminated_at, remote.canceled_at, remote.started_at, remote.created_at)
    verdict = _gate(
        event, "subscription", remote.lago_id, at, SUBSCRIPTION_RANKS.get(remote.status, 0)
    )
    customer = Customer.objects.filter(external_id=remote.external_customer_id).first()
    related = [{"type": "lago.subscription", "id": remote.external_id}]
    if verdict == "older":
        return Outcome(applied=False, note="older than the state already applied")
    note = f"subscription {remote.external_id} is {remote.status}"
    ours = Subscription.objects.filter(external_id=remote.external_id).first()
    if ours is not None:
        related.append({"type": "subscription", "id": str(ours.pk)})
        if settings.BILLING_ENGINE == "lago":
            note = _follow_engine(ours, remote, at, live_in_lago) or note
    return Outcome(customer_id=customer.pk if customer else None, related=related, note=note)


subscription_changed = FetchThenApply(fetch=_lago_live_record, apply=_subscription_changed)


def _follow_engine(
    ours: Subscription, remote: LagoSubscription, at: datetime | None, live_in_lago: bool | None
) -> str:
    """Lago is the engine of record: our row follows what Lago did on its own."""
    # Only about the record we hold: Lago ends the old record on every plan change.
    if ours.lago_id is None or str(ours.lago_id) != remote.lago_id:
        return ""
    if remote.status == "terminated" and ours.status == Subscription.Status.ACTIVE:
        # A plan change in flight also ends our record in Lago: follow only if Lago holds
        # no live record for this subscription any more.
        if live_in_lago:
            return "Lago still holds a live record: not an ending"
        subscription_services.subscription_ended_by_engine(
            subscription=ours, at=at or timezone.now()
        )
        return "ended here too, following Lago"
    if remote.status == "active" and ours.status == Subscription.Status.PENDING:
        subscription_services.subscription_advance(subscription=ours, now=timezone.now())
        return "started here too, following Lago"
    return ""


def invoice_changed(event: WebhookEvent, payload: dict[str, Any]) -> Outcome:
    webhook = lago.parse_webhook(payload)
    remote = _required(webhook, webhook.invoice)
    rank = INVOICE_RANKS.get(remote.status, 0) * 10 + PAYMENT_RANKS.get(remote.payment_status, 0)
    verdict = _gate(
        event, "invoice", remote.lago_id, _latest(remote.updated_at, remote.created_at), rank
    )
    customer = Customer.objects.filter(external_id=remote.customer_external_id).first()
    if verdict == "older":
        return Outcome(applied=False, note="older than the state already applied")
    related = [{"type": "lago.invoice", "id": remote.lago_id}]
    if settings.BILLING_ENGINE == "lago":
        # Lago is the engine of record: its invoice becomes ours, to collect.
        mirrored = lago_invoice_mirror(remote=remote)
        if mirrored is not None:
            related.append({"type": "invoice", "id": str(mirrored.pk)})
    return Outcome(
        customer_id=customer.pk if customer else None,
        related=related,
        note=(
            f"invoice {remote.number} {remote.status}, payment {remote.payment_status}, "
            f"total {remote.total_amount_cents} {remote.currency}"
        ),
    )


def events_errors(event: WebhookEvent, payload: dict[str, Any]) -> Outcome:
    errors = lago.parse_webhook(payload).events_errors
    rows = [
        UsageEventError(transaction_id=transaction_id, error=kind, webhook_event=event)
        for kind, transaction_ids in errors.items()
        for transaction_id in transaction_ids
    ]
    UsageEventError.objects.bulk_create(rows, ignore_conflicts=True)
    return Outcome(note=f"{len(rows)} usage event error(s) recorded")


HANDLERS: dict[str, Handler] = {
    "customer.created": customer_changed,
    "customer.updated": customer_changed,
    "subscription.started": subscription_changed,
    "subscription.updated": subscription_changed,
    "subscription.terminated": subscription_changed,
    "subscription.canceled": subscription_changed,
    "subscription.incomplete": subscription_changed,
    "subscription.trial_ended": subscription_changed,
    "invoice.created": invoice_changed,
    "invoice.generated": invoice_changed,
    "invoice.drafted": invoice_changed,
    "invoice.voided": invoice_changed,
    "invoice.payment_status_updated": invoice_changed,
    "events.errors": events_errors,
}


def describe(payload: dict[str, Any]) -> tuple[str, datetime | None]:
    """The object id and the provider time of an event, stored on intake for staff."""
    try:
        webhook = lago.parse_webhook(payload)
    except ProviderError:
        # Stored all the same, for staff to see; its handler will say what is wrong.
        return "", None
    return webhook.object_id[:255], webhook.changed_at
