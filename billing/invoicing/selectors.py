"""Reads over invoices (lists, what a customer owes, the billing backlog) and the
fees a period's usage would produce so far."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, QuerySet

from billing.invoicing.models import Invoice
from billing.invoicing.rating import charge_amount_cents
from billing.usage.selectors import event_values, usage_units
from customers.models import Customer
from subscriptions.models import BillableMetric, Subscription, SubscriptionPeriod


@dataclass(frozen=True)
class BillingBacklog:
    unbilled_periods: int
    awaiting_payment: dict[str, int]


def billing_backlog() -> BillingBacklog:
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
class MetricUsage:
    metric: str
    aggregation: str
    units: Decimal
    amount_cents: int


def subscription_usage(
    *, subscription: Subscription, start: datetime, end: datetime
) -> list[MetricUsage]:
    """Each charged metric of the plan (and any other metric with usage), with its fee."""
    units = usage_units(subscription=subscription, start=start, end=end)
    overrides = (subscription.overrides or {}).get("charges") or {}
    currency = subscription.plan.currency
    lines = []
    charged = set()
    for charge in subscription.plan.charges.select_related("metric"):
        metric = charge.metric
        charged.add(metric.pk)
        metric_units = units.get(metric.pk, Decimal(0))
        properties = overrides.get(metric.code, charge.properties)
        values = (
            event_values(subscription=subscription, metric=metric, start=start, end=end)
            if charge.charge_model == "percentage"
            else ()
        )
        lines.append(
            MetricUsage(
                metric=metric.code,
                aggregation=metric.aggregation,
                units=metric_units,
                amount_cents=charge_amount_cents(
                    charge_model=charge.charge_model,
                    properties=properties,
                    units=metric_units,
                    currency=currency,
                    event_values=values,
                ),
            )
        )
    for metric in BillableMetric.objects.filter(pk__in=set(units) - charged):
        lines.append(
            MetricUsage(
                metric=metric.code,
                aggregation=metric.aggregation,
                units=units[metric.pk],
                amount_cents=0,
            )
        )
    return lines


def customer_has_invoices(*, customer: Customer) -> bool:
    """Answers customers' `currency_in_use`: an invoice, even voided, is in its currency."""
    return Invoice.objects.filter(customer=customer).exists()
