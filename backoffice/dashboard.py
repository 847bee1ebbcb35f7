"""The admin's first page: what the business is owed and paid, and what needs someone,
in one currency. Every number links to the list behind it (a filtered changelist)."""

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import admin
from django.core.cache import cache
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from backoffice import selectors
from core.iso import currency_exponent, format_money
from core.replica import replica_reads

PERIODS = (3, 6, 12, 24)
USAGE_CACHE_SECONDS = 300


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    url: str
    note: str = ""
    alert: bool = False


def _list(name: str, **filters) -> str:
    url = reverse(f"admin:{name}_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def _months(request) -> int:
    try:
        months = int(request.GET.get("months", 12))
    except ValueError:
        return 12
    return months if months in PERIODS else 12


def dashboard(request):
    # Every figure reads the read replica when there is one (core/replica.py): a report a
    # few seconds behind, that takes no reads from the primary. Rendered inside, so what
    # the template reads does too.
    with replica_reads():
        response = _dashboard(request)
        response.render()
    return response


def _dashboard(request):
    choices = selectors.currencies()
    currency = request.GET.get("currency", "").upper()
    currency = currency if currency in choices else choices[0]
    months = _months(request)
    now, today = timezone.now(), timezone.localdate()
    money = lambda cents: format_money(cents, currency)  # noqa: E731

    mrr = selectors.mrr(currency=currency)
    ageing = selectors.ageing(currency=currency, today=today)
    outstanding = sum(bucket.amount_cents for bucket in ageing)
    overdue = sum(bucket.amount_cents for bucket in ageing if bucket.key != "current")
    payments = selectors.payments(currency=currency, now=now)
    operations = selectors.operations(now=now)
    revenue = selectors.revenue_by_month(currency=currency, today=today, months=months)
    # A scan of the last 14 days of usage events (millions at scale): kept 5 minutes.
    key = f"dashboard:usage:{today.isoformat()}"
    cached = cache.get(key)
    if cached is None:
        cached = selectors.usage_by_day(today=today)
        cache.set(key, cached, USAGE_CACHE_SECONDS)
    usage_days, usage = cached
    since = now - timedelta(days=30 * months)
    invoices = "invoicing_invoice"
    rate = payments.success_rate
    figures = [
        Figure("MRR", money(mrr), _list("subscriptions_subscription", status__exact="active")),
        Figure("ARR", money(mrr * 12), _list("subscriptions_subscription", status__exact="active")),
        Figure(
            "Outstanding",
            money(outstanding),
            _list(invoices, currency=currency, collection="owed"),
            _invoices(sum(b.invoices for b in ageing)),
        ),
        Figure(
            "Overdue",
            money(overdue),
            _list(invoices, currency=currency, ageing="overdue"),
            _invoices(sum(b.invoices for b in ageing if b.key != "current")),
            alert=overdue > 0,
        ),
        Figure(
            "Payment success (30 days)",
            "—" if rate is None else f"{rate} %",
            _list("payments_paymentattempt", currency=currency),
            f"{payments.succeeded} succeeded, {payments.failed} failed",
        ),
        Figure(
            "Failed payments (30 days)",
            str(payments.failed),
            _list("payments_paymentattempt", status__exact="failed", currency=currency),
            alert=payments.failed > 0,
        ),
        Figure(
            "Syncs failed",
            str(operations.syncs_failed),
            _list("sync_outboxmessage", status__exact="failed"),
            alert=operations.syncs_failed > 0,
        ),
        Figure(
            "Syncs waiting > 15 min",
            str(operations.syncs_waiting),
            _list("sync_outboxmessage", status__exact="pending"),
            alert=operations.syncs_waiting > 0,
        ),
        Figure(
            "Webhooks failing",
            str(operations.webhooks_failed),
            _list("webhooks_webhookevent", status__exact="failed"),
            alert=operations.webhooks_failed > 0,
        ),
    ]
    charts = {
        "revenue": {
            "labels": [row.month.strftime("%b %Y") for row in revenue],
            "invoiced": [row.invoiced_cents for row in revenue],
            "collected": [row.collected_cents for row in revenue],
            "links": [
                _list(
                    invoices,
                    currency=currency,
                    issued_at__year=row.month.year,
                    issued_at__month=row.month.month,
                )
                for row in revenue
            ],
        },
        "ageing": {
            "labels": [bucket.label for bucket in ageing],
            "amounts": [bucket.amount_cents for bucket in ageing],
            "links": [_list(invoices, currency=currency, ageing=bucket.key) for bucket in ageing],
        },
        "usage": {
            "labels": [day.strftime("%d %b") for day in usage_days],
            "series": [{"label": metric.code, "counts": metric.counts} for metric in usage],
        },
        # Charts draw major units: the page passes minor units and the exponent.
        "exponent": currency_exponent(currency),
    }
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "currency": currency,
        "currencies": choices,
        "months": months,
        "periods": PERIODS,
        "figures": figures,
        "ageing": [
            (b, money(b.amount_cents), _list(invoices, currency=currency, ageing=b.key))
            for b in ageing
        ],
        # A customer's name opens its page (what it owes and has paid); its amount, the
        # invoices behind the amount.
        "debtors": [
            (
                d,
                money(d.overdue_cents),
                _list(invoices, q=d.external_id, ageing="overdue"),
                _customer_url(d.customer_id),
            )
            for d in selectors.overdue_by_customer(currency=currency, today=today)
        ],
        "failed_payments": [
            (attempt, money(attempt.amount_cents), _invoice_url(attempt.invoice_id))
            for attempt in payments.failed_recent
        ],
        "top_customers": [
            (
                c,
                money(c.invoiced_cents),
                _list(invoices, q=c.external_id, currency=currency),
                _customer_url(c.customer_id),
            )
            for c in selectors.top_customers(currency=currency, since=since)
        ],
        "revenue": [
            (row, money(row.invoiced_cents), money(row.collected_cents)) for row in revenue
        ],
        "charts": charts,
        "app_list": admin.site.get_app_list(request),
        "can_run_billing": request.user.has_perm("invoicing.change_invoice"),
    }
    return TemplateResponse(request, "backoffice/dashboard.html", context)


def _invoices(count: int) -> str:
    return f"{count} invoice{'' if count == 1 else 's'}"


def _customer_url(customer_id: str) -> str:
    return reverse("admin:customers_customer_change", args=[customer_id])


def _invoice_url(invoice_id) -> str:
    return reverse("admin:invoicing_invoice_change", args=[invoice_id])
