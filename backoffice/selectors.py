"""The dashboard's numbers, each one query (or a few), in one currency.

Every amount is in minor units; what is summed is stated beside each function, so a
number on the page can be checked against the list it links to.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import BigIntegerField, Count, Q, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, TruncDay, TruncMonth
from django.utils import timezone

from billing.invoicing import receivables
from billing.invoicing.models import Invoice
from billing.payments.models import PaymentAttempt
from billing.sync.models import OutboxMessage
from billing.usage.models import UsageRecord
from customers.models import Customer
from subscriptions.models import Plan, Subscription
from webhooks.models import WebhookEvent

# A plan's fee per month: a year is 12 months, a quarter 3, a week 52/12 of one.
MONTHLY: dict[str, Decimal] = {
    Plan.Interval.MONTHLY: Decimal(1),
    Plan.Interval.QUARTERLY: Decimal(1) / 3,
    Plan.Interval.YEARLY: Decimal(1) / 12,
    Plan.Interval.WEEKLY: Decimal(52) / 12,
}
# A pending outbox message older than this is "waiting" (the broker or a provider is down).
STUCK_AFTER = timedelta(minutes=15)


def currencies() -> list[str]:
    """The currencies staff can pick, those customers are billed in: the one with the most
    active subscriptions first (the page's default), then by customers. Both tables are
    small beside the invoices, which the choice need not read."""
    customers = dict(
        Customer.objects.exclude(currency="")
        .values("currency")
        .annotate(n=Count("id"))
        .values_list("currency", "n")
    )
    live = dict(
        Subscription.objects.filter(status=Subscription.Status.ACTIVE)
        .values("plan__currency")
        .annotate(n=Count("id"))
        .values_list("plan__currency", "n")
    )
    ranked = sorted(customers, key=lambda c: (-live.get(c, 0), -customers[c], c))
    return ranked or ["USD"]


def mrr(*, currency: str) -> int:
    """Monthly recurring revenue: the plan fee (or its override) of every active
    subscription in the currency, per month, rounded once. Usage charges are not in it:
    they are not recurring."""
    fee = Coalesce(
        Cast(KeyTextTransform("amount_cents", "overrides"), BigIntegerField()),
        "plan__amount_cents",
    )
    rows = (
        Subscription.objects.filter(status=Subscription.Status.ACTIVE, plan__currency=currency)
        .values("plan__interval")
        .annotate(total=Sum(fee))
    )
    monthly = sum(
        (Decimal(row["total"] or 0) * MONTHLY[row["plan__interval"]] for row in rows), Decimal(0)
    )
    return int(monthly.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _midnight(day: date) -> datetime:
    """The day's start in the site's time zone, which TruncMonth and TruncDay use too."""
    return timezone.make_aware(datetime.combine(day, time.min))


def _month_starts(today: date, months: int) -> list[date]:
    first = today.replace(day=1)
    starts = []
    for back in range(months - 1, -1, -1):
        year, month = divmod(first.month - 1 - back, 12)
        starts.append(date(first.year + year, month + 1, 1))
    return starts


@dataclass(frozen=True)
class MonthRevenue:
    month: date
    invoiced_cents: int  # issued invoices' totals (voided ones left out)
    collected_cents: int  # card payments that succeeded


def revenue_by_month(*, currency: str, today: date, months: int = 12) -> list[MonthRevenue]:
    starts = _month_starts(today, months)
    since = _midnight(starts[0])
    invoiced = dict(
        Invoice.objects.filter(
            currency=currency, status=Invoice.Status.FINALIZED, issued_at__gte=since
        )
        .annotate(month=TruncMonth("issued_at"))
        .values("month")
        .annotate(total=Sum("total_amount_cents"))
        .values_list("month", "total")
    )
    collected = dict(
        PaymentAttempt.objects.filter(
            currency=currency,
            status=PaymentAttempt.Status.SUCCEEDED,
            completed_at__gte=since,
        )
        .annotate(month=TruncMonth("completed_at"))
        .values("month")
        .annotate(total=Sum("amount_cents"))
        .values_list("month", "total")
    )
    by_date_invoiced = {m.date(): t for m, t in invoiced.items()}
    by_date_collected = {m.date(): t for m, t in collected.items()}
    return [
        MonthRevenue(
            month=start,
            invoiced_cents=int(by_date_invoiced.get(start) or 0),
            collected_cents=int(by_date_collected.get(start) or 0),
        )
        for start in starts
    ]


@dataclass(frozen=True)
class Ageing:
    key: str
    label: str
    amount_cents: int
    invoices: int


def ageing(*, currency: str, today: date) -> list[Ageing]:
    """What is owed on issued invoices, by days past due (one query)."""
    owed = receivables.owed(Invoice.objects.filter(currency=currency))
    sums = owed.aggregate(
        **{
            f"a_{i}": Sum("due_cents", filter=receivables.in_bucket(key, today))
            for i, (key, *_rest) in enumerate(receivables.BUCKETS)
        },
        **{
            f"n_{i}": Count("id", filter=receivables.in_bucket(key, today))
            for i, (key, *_rest) in enumerate(receivables.BUCKETS)
        },
    )
    return [
        Ageing(key=key, label=label, amount_cents=int(sums[f"a_{i}"] or 0), invoices=sums[f"n_{i}"])
        for i, (key, label, *_rest) in enumerate(receivables.BUCKETS)
    ]


@dataclass(frozen=True)
class Debtor:
    customer_id: str
    external_id: str
    name: str
    overdue_cents: int
    invoices: int


def overdue_by_customer(*, currency: str, today: date, top: int = 10) -> list[Debtor]:
    rows = (
        receivables.owed(Invoice.objects.filter(currency=currency))
        .filter(receivables.in_bucket("overdue", today))
        .values("customer_id", "customer__external_id", "customer__name")
        .annotate(total=Sum("due_cents"), count=Count("id"))
        .order_by("-total", "customer__external_id")[:top]
    )
    return [
        Debtor(
            customer_id=str(row["customer_id"]),
            external_id=row["customer__external_id"],
            name=row["customer__name"],
            overdue_cents=int(row["total"]),
            invoices=row["count"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Payments:
    succeeded: int
    failed: int
    failed_recent: list[PaymentAttempt]

    @property
    def success_rate(self) -> Decimal | None:
        done = self.succeeded + self.failed
        if not done:
            return None
        return (Decimal(100) * self.succeeded / done).quantize(Decimal("0.1"), ROUND_HALF_UP)


def payments(*, currency: str, now: datetime, days: int = 30, recent_days: int = 7) -> Payments:
    """Card payments completed in the last `days`; the failures of the last `recent_days`
    with their reasons."""
    counts = PaymentAttempt.objects.filter(
        currency=currency, completed_at__gte=now - timedelta(days=days)
    ).aggregate(
        succeeded=Count("id", filter=Q(status=PaymentAttempt.Status.SUCCEEDED)),
        failed=Count("id", filter=Q(status=PaymentAttempt.Status.FAILED)),
    )
    recent = list(
        PaymentAttempt.objects.filter(
            currency=currency,
            status=PaymentAttempt.Status.FAILED,
            completed_at__gte=now - timedelta(days=recent_days),
        )
        .select_related("invoice__customer")
        .order_by("-completed_at")[:10]
    )
    return Payments(succeeded=counts["succeeded"], failed=counts["failed"], failed_recent=recent)


@dataclass(frozen=True)
class Operations:
    syncs_failed: int
    syncs_waiting: int
    webhooks_failed: int


def operations(*, now: datetime) -> Operations:
    """What needs an engineer or an operator: outbox messages that failed or have waited
    past STUCK_AFTER, and webhook events whose processing failed."""
    syncs = OutboxMessage.objects.aggregate(
        failed=Count("id", filter=Q(status=OutboxMessage.Status.FAILED)),
        waiting=Count(
            "id",
            filter=Q(status=OutboxMessage.Status.PENDING, created_at__lt=now - STUCK_AFTER),
        ),
    )
    return Operations(
        syncs_failed=syncs["failed"],
        syncs_waiting=syncs["waiting"],
        webhooks_failed=WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).count(),
    )


@dataclass(frozen=True)
class MetricDays:
    code: str
    counts: list[int]  # events per day, oldest first


def usage_by_day(
    *, today: date, days: int = 14, top: int = 5
) -> tuple[list[date], list[MetricDays]]:
    """Events received per day for the metrics with the most events over `days` days."""
    start = today - timedelta(days=days - 1)
    since = _midnight(start)
    rows = (
        UsageRecord.objects.filter(timestamp__gte=since)
        .annotate(day=TruncDay("timestamp"))
        .values("metric__code", "day")
        .annotate(events=Count("id"))
    )
    per_metric: dict[str, dict[date, int]] = {}
    for row in rows:
        per_metric.setdefault(row["metric__code"], {})[row["day"].date()] = row["events"]
    ranked = sorted(per_metric.items(), key=lambda item: (-sum(item[1].values()), item[0]))[:top]
    dates = [start + timedelta(days=i) for i in range(days)]
    return dates, [MetricDays(code, [counts.get(d, 0) for d in dates]) for code, counts in ranked]


@dataclass(frozen=True)
class TopCustomer:
    customer_id: str
    external_id: str
    name: str
    invoiced_cents: int


def top_customers(*, currency: str, since: datetime, top: int = 10) -> list[TopCustomer]:
    """Customers by the totals of their issued invoices since `since`."""
    rows = (
        Invoice.objects.filter(
            currency=currency, status=Invoice.Status.FINALIZED, issued_at__gte=since
        )
        .values("customer_id", "customer__external_id", "customer__name")
        .annotate(total=Sum("total_amount_cents"))
        .order_by("-total", "customer__external_id")[:top]
    )
    return [
        TopCustomer(
            str(row["customer_id"]),
            row["customer__external_id"],
            row["customer__name"],
            int(row["total"]),
        )
        for row in rows
    ]
