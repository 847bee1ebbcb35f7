"""Reads over invoices (lists, what a customer owes, the billing backlog) and the
fees a period's usage would produce so far."""

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, QuerySet
from django.utils import timezone

from billing.invoicing.inputs import window_input
from billing.invoicing.models import Invoice
from billing.invoicing.rating import rate_period
from billing.usage.selectors import usage_units
from customers.models import Customer
from subscriptions.models import BillableMetric, Subscription, SubscriptionPeriod


@dataclass(frozen=True)
class BillingBacklog:
    unbilled_periods: int
    awaiting_payment: dict[str, int]


def billing_backlog() -> BillingBacklog:
    # A trial's end queued ahead (an `advance` row in the future) is not a backlog yet.
    unbilled = SubscriptionPeriod.objects.filter(
        billed_at__isnull=True, end__lte=timezone.now()
    ).count()
    awaiting = {
        row["payment_status"]: row["n"]
        for row in Invoice.objects.filter(
            status=Invoice.Status.FINALIZED, payment_status__in=["pending", "failed"]
        )
        .values("payment_status")
        .annotate(n=Count("id"))
    }
    return BillingBacklog(unbilled_periods=unbilled, awaiting_payment=awaiting)


def open_invoices(*, customer: Customer) -> QuerySet[Invoice]:
    """A customer's issued invoices that still await a payment from them."""
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
    issued_after: datetime | None = None,
    issued_before: datetime | None = None,
) -> QuerySet[Invoice]:
    """Invoices filtered as ListInvoices allows; customers and subscriptions by external_id."""
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


@dataclass(frozen=True)
class PhaseFee:
    """One charge's fee over one phase (a plan, with its overrides) of the stretch read."""

    plan: str
    start: datetime
    end: datetime
    units: Decimal
    amount_cents: int
    # Pricing by dimension: the charge filter ("" for the default) and pricing group.
    filter: str = ""
    grouped_by: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricUsage:
    metric: str
    aggregation: str
    units: Decimal
    amount_cents: int
    fees: list[PhaseFee]


def subscription_usage(
    *, subscription: Subscription, start: datetime, end: datetime
) -> list[MetricUsage]:
    """Each metric charged over [start, end) (and any other metric with usage), with the
    fees its charges would produce: rated phase by phase through the invoice's own path
    (inputs.window_input, rating.rate_period), so the read and the invoice never differ."""
    fees = [
        fee
        for fee in rate_period(window_input(subscription=subscription, start=start, end=end))
        if fee.fee_type == "charge"
    ]
    units = usage_units(subscription=subscription, start=start, end=end)
    by_code = {
        m.code: m for m in BillableMetric.objects.filter(code__in={f.metric_code for f in fees})
    }
    lines: dict[str, MetricUsage] = {}
    for fee in fees:
        metric = by_code[fee.metric_code]
        line = lines.setdefault(
            metric.code,
            MetricUsage(
                metric=metric.code,
                aggregation=metric.aggregation,
                units=units.get(metric.pk, Decimal(0)),
                amount_cents=0,
                fees=[],
            ),
        )
        line.fees.append(
            PhaseFee(
                plan=fee.plan_code,
                start=fee.start,
                end=fee.end,
                units=fee.units,
                amount_cents=fee.amount_cents,
                filter=fee.filter,
                grouped_by=fee.grouped_by,
            )
        )
        lines[metric.code] = replace(line, amount_cents=line.amount_cents + fee.amount_cents)
    charged = {by_code[code].pk for code in lines}
    for metric in BillableMetric.objects.filter(pk__in=set(units) - charged):
        lines[metric.code] = MetricUsage(
            metric=metric.code,
            aggregation=metric.aggregation,
            units=units[metric.pk],
            amount_cents=0,
            fees=[],
        )
    return list(lines.values())


def customer_has_invoices(*, customer: Customer) -> bool:
    """Answers customers' `currency_in_use`: an invoice, even voided, is in its currency."""
    return Invoice.objects.filter(customer=customer).exists()
