"""The billing run's queue and what awaits payment in /metrics, read at scrape time."""

from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily

from billing.invoicing.selectors import billing_backlog
from core.metrics import register_database_collector


class BillingBacklogCollector:
    """The billing run's queue and what awaits payment, read at scrape time."""

    def collect(self):
        try:
            backlog = billing_backlog()
        except DatabaseError:
            return
        periods = GaugeMetricFamily(
            "billing_periods_unbilled", "Closed subscription periods with no invoice yet."
        )
        periods.add_metric([], backlog.unbilled_periods)
        yield periods
        invoices = GaugeMetricFamily(
            "invoices_awaiting_payment",
            "Finalized invoices not paid, by payment status.",
            labels=["payment_status"],
        )
        for status in ("pending", "failed"):
            invoices.add_metric([status], backlog.awaiting_payment.get(status, 0))
        yield invoices


register_database_collector(BillingBacklogCollector())
