from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Min
from django.utils import timezone

from billing.models import OutboxMessage
from billing.providers import provider_enabled


@dataclass(frozen=True)
class OutboxBacklog:
    counts: dict[tuple[str, str], int]
    oldest_pending_age: dict[str, float]


def outbox_backlog() -> OutboxBacklog:
    unfinished = OutboxMessage.objects.filter(
        status__in=[OutboxMessage.Status.PENDING, OutboxMessage.Status.PROCESSING]
    )
    counts = {
        (row["provider"], row["status"]): row["n"]
        for row in unfinished.values("provider", "status").annotate(n=Count("id"))
    }
    failed = OutboxMessage.objects.filter(status=OutboxMessage.Status.FAILED)
    for row in failed.values("provider").annotate(n=Count("id")):
        counts[(row["provider"], "failed")] = row["n"]
    now = timezone.now()
    oldest = {
        row["provider"]: (now - row["oldest"]).total_seconds()
        for row in unfinished.filter(status=OutboxMessage.Status.PENDING)
        .values("provider")
        .annotate(oldest=Min("created_at"))
    }
    return OutboxBacklog(counts=counts, oldest_pending_age=oldest)


_STATUS = {
    OutboxMessage.Status.PENDING: "pending",
    OutboxMessage.Status.PROCESSING: "pending",
    OutboxMessage.Status.DONE: "synced",
    OutboxMessage.Status.FAILED: "failed",
}


def sync_states(
    *, object_type: str, objects: Iterable, remote_ids: dict[str, str]
) -> dict[str, dict[str, dict]]:
    """The `sync` block of each object, from its latest outbox message per provider.

    `remote_ids` names the providers the object goes to and the attribute holding each
    one's id, so an object whose messages were purged still reads as synced.
    """
    objects = list(objects)
    ids = [str(obj.pk) for obj in objects]
    latest: dict[tuple[str, str], OutboxMessage] = {}
    messages = (
        OutboxMessage.objects.filter(object_type=object_type, object_id__in=ids)
        .exclude(status=OutboxMessage.Status.SUPERSEDED)
        .order_by("object_id", "provider", "-created_at", "-id")
        .distinct("object_id", "provider")
    )
    for message in messages:
        latest[(message.object_id, message.provider)] = message
    states = {}
    for obj in objects:
        block = {}
        for provider in sorted(remote_ids):
            message = latest.get((str(obj.pk), provider))
            if message is not None:
                status = _STATUS[message.status]
                error = message.last_error or None
            elif not provider_enabled(provider):
                status, error = "disabled", None
            elif getattr(obj, remote_ids[provider], None):
                status, error = "synced", None
            else:
                status, error = "pending", None
            block[provider] = {"status": status, "error": error}
        states[str(obj.pk)] = block
    return states


# --- Invoices ----------------------------------------------------------------------------
@dataclass(frozen=True)
class BillingBacklog:
    unbilled_periods: int
    awaiting_payment: dict[str, int]


def billing_backlog() -> BillingBacklog:
    from billing.invoice_models import Invoice
    from subscriptions.models import SubscriptionPeriod

    unbilled = SubscriptionPeriod.objects.filter(billed_at__isnull=True).count()
    awaiting = {
        row["payment_status"]: row["n"]
        for row in Invoice.objects.filter(
            status=Invoice.Status.FINALIZED, payment_status__in=["pending", "failed"]
        )
        .values("payment_status")
        .annotate(n=Count("id"))
    }
    return BillingBacklog(unbilled_periods=unbilled, awaiting_payment=awaiting)


def open_invoices(*, customer):
    """A customer's issued invoices that still await a payment from them."""
    from billing.invoice_models import Invoice

    return Invoice.objects.filter(
        customer=customer,
        status=Invoice.Status.FINALIZED,
        payment_status__in=[Invoice.PaymentStatus.PENDING, Invoice.PaymentStatus.FAILED],
        total_amount_cents__gt=0,
    )


def invoice_list(
    *,
    customer: str | None = None,
    subscription: str | None = None,
    status: str | None = None,
    payment_status: str | None = None,
    currency: str | None = None,
    issued_after=None,
    issued_before=None,
):
    """Invoices filtered as ListInvoices allows; customers and subscriptions by external_id."""
    from billing.invoice_models import Invoice

    invoices = Invoice.objects.select_related("customer", "subscription")
    if customer:
        invoices = invoices.filter(customer__external_id=customer)
    if subscription:
        invoices = invoices.filter(subscription__external_id=subscription)
    if status:
        invoices = invoices.filter(status=status)
    if payment_status:
        invoices = invoices.filter(payment_status=payment_status)
    if currency:
        invoices = invoices.filter(currency=currency.upper())
    if issued_after:
        invoices = invoices.filter(issued_at__gte=issued_after)
    if issued_before:
        invoices = invoices.filter(issued_at__lt=issued_before)
    return invoices
