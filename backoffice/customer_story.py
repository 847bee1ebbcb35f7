"""A customer's whole story for its admin page: what it subscribes to and has used so far,
what it was invoiced, owes and paid, its credits and coupons, and one timeline merged
from the audit trail, the provider events about it, its payments and staff notes."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import QuerySet, Sum
from django.utils import timezone
from pghistory.models import Events

from backoffice.models import StaffNote
from billing.coupons.models import AppliedCoupon
from billing.invoicing import receivables
from billing.invoicing.models import CreditNote, Invoice
from billing.invoicing.selectors import MetricUsage, subscription_usage
from billing.payments.models import PaymentAttempt
from billing.wallets.models import Wallet
from customers.models import Customer
from subscriptions.models import Subscription
from webhooks.models import WebhookEvent

SHOWN = 20  # rows per list; each list links to the whole of it


@dataclass(frozen=True)
class CurrentUsage:
    subscription: Subscription
    usage: list[MetricUsage]

    @property
    def fees_cents(self) -> int:
        return sum(line.amount_cents for line in self.usage)


@dataclass(frozen=True)
class Balance:
    invoiced_cents: int  # issued invoices' totals
    paid_cents: int  # what cards paid on them
    due_cents: int  # still owed
    overdue_cents: int  # of which past the due date


@dataclass(frozen=True)
class Moment:
    at: datetime
    kind: str  # change | provider | payment | note
    text: str
    who: str = ""


def current_usage(customer: Customer) -> list[CurrentUsage]:
    """Each live subscription's usage and fees so far in its current period."""
    now = timezone.now()
    found = []
    for subscription in customer.subscriptions.filter(
        status=Subscription.Status.ACTIVE, current_period_start__isnull=False
    ).select_related("plan"):
        start = subscription.current_period_start
        assert start is not None  # filtered above
        found.append(
            CurrentUsage(
                subscription, subscription_usage(subscription=subscription, start=start, end=now)
            )
        )
    return found


def balance(customer: Customer) -> Balance:
    """In the customer's currency (a customer is billed in one)."""
    issued = Invoice.objects.filter(customer=customer, status=Invoice.Status.FINALIZED)
    totals = issued.aggregate(invoiced=Sum("total_amount_cents"), paid=Sum("paid_amount_cents"))
    overdue = receivables.in_bucket("overdue", timezone.localdate())
    owed = receivables.owed(issued).aggregate(
        due=Sum("due_cents"), overdue=Sum("due_cents", filter=overdue)
    )
    return Balance(
        invoiced_cents=totals["invoiced"] or 0,
        paid_cents=totals["paid"] or 0,
        due_cents=owed["due"] or 0,
        overdue_cents=owed["overdue"] or 0,
    )


def invoices(customer: Customer) -> QuerySet[Invoice]:
    return Invoice.objects.filter(customer=customer).order_by("-created_at")[:SHOWN]


def credit_notes(customer: Customer) -> QuerySet[CreditNote]:
    return CreditNote.objects.filter(customer=customer).select_related("invoice")[:SHOWN]


def wallets(customer: Customer) -> QuerySet[Wallet]:
    return Wallet.objects.filter(customer=customer).order_by("status", "created_at")


def coupons(customer: Customer) -> QuerySet[AppliedCoupon]:
    return (
        AppliedCoupon.objects.filter(customer=customer)
        .select_related("coupon")
        .order_by("status", "-created_at")[:SHOWN]
    )


def attempts(customer: Customer) -> QuerySet[PaymentAttempt]:
    return (
        PaymentAttempt.objects.filter(invoice__customer=customer)
        .select_related("invoice")
        .order_by("-created_at")[:SHOWN]
    )


def _who(context: dict | None, usernames: dict[str, str]) -> str:
    """Who made a change: the audit context names a staff user by id, an API caller by
    its key's name."""
    context = context or {}
    user = context.get("user")
    key = context.get("api_key")
    if user is not None:
        return f"staff {usernames.get(str(user), user)}"
    return f"API key {key}" if key else "system"


def timeline(customer: Customer, limit: int = 50) -> list[Moment]:
    """The latest `limit` moments, newest first."""
    moments: list[Moment] = []
    changes = list(Events.objects.references(customer).order_by("-pgh_created_at")[:limit])
    users = {str((e.pgh_context or {}).get("user")) for e in changes} - {"None"}
    usernames = {
        str(pk): name
        for pk, name in User.objects.filter(pk__in=[u for u in users if u.isdigit()]).values_list(
            "pk", "username"
        )
    }
    for event in changes:
        model = event.pgh_model.split(".")[-1].removesuffix("Event")
        fields = ", ".join(sorted((event.pgh_diff or {}).keys())) if event.pgh_diff else ""
        text = f"{model} {event.pgh_label}" + (f": {fields}" if fields else "")
        who = _who(event.pgh_context, usernames)
        moments.append(Moment(event.pgh_created_at, "change", text, who))
    paid = attempts(customer)
    for attempt in paid:
        outcome = attempt.status + (f" ({attempt.failure_code})" if attempt.failure_code else "")
        moments.append(
            Moment(
                attempt.completed_at or attempt.created_at,
                "payment",
                f"Payment {attempt.number} of invoice {attempt.invoice.number or 'draft'}: "
                f"{attempt.amount_cents} {attempt.currency} minor units, {outcome}",
            )
        )
    ids = [i for i in (customer.stripe_customer_id, str(customer.lago_id or "")) if i]
    ids += [a.stripe_payment_intent_id for a in paid if a.stripe_payment_intent_id]
    for event in WebhookEvent.objects.filter(object_id__in=ids).order_by("-received_at")[:limit]:
        moments.append(
            Moment(event.received_at, "provider", f"{event.provider} {event.type}: {event.status}")
        )
    for note in StaffNote.objects.filter(customer=customer).select_related("author")[:limit]:
        author = note.author.get_username() if note.author else "a former user"
        moments.append(Moment(note.created_at, "note", note.body, f"staff {author}"))
    moments.sort(key=lambda moment: moment.at, reverse=True)
    return moments[:limit]
