"""Prometheus metrics: request latency, outbox backlog, and whatever the apps register.

Under gunicorn with several workers, set PROMETHEUS_MULTIPROC_DIR so the samples of all
workers are added up at scrape time.
"""

import os
import re
import time

from django.db import DatabaseError
from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

REQUEST_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Latency of HTTP requests by route, method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


PAYMENT_ATTEMPTS = Counter(
    "payment_attempts_total", "Settled payment attempts by outcome.", ["outcome"]
)
INVOICES_GENERATED = Counter(
    "invoices_generated_total", "Invoices created by the billing run or the API.", ["source"]
)
BILLING_RUN_PERIODS = Counter(
    "billing_run_periods_total", "Closed periods the billing run handled, by outcome.", ["outcome"]
)


def _route_label(route: str) -> str:
    # DRF routers give regexes ("customers/(?P<external_id>[^/]+)/$"); show "<external_id>".
    return _GROUP.sub(r"<\1>", route).replace("^", "").replace("$", "")


# Labels come from a closed set: a client must not be able to mint new series.
_KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


class MetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        # The route pattern, not the path, so ids do not explode the label space.
        route = _route_label(match.route) if match and match.route else "unmatched"
        method = request.method if request.method in _KNOWN_METHODS else "other"
        REQUEST_LATENCY.labels(route, method, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


class OutboxBacklogCollector:
    """Reads the backlog from the database at scrape time: always true, never stale."""

    def collect(self):
        from billing.selectors import outbox_backlog

        gauge = GaugeMetricFamily(
            "outbox_messages",
            "Outbox messages by provider and status.",
            labels=["provider", "status"],
        )
        oldest = GaugeMetricFamily(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest pending outbox message.",
            labels=["provider"],
        )
        try:
            backlog = outbox_backlog()
        except DatabaseError:
            return
        # Every series exists even at zero, so alerts never face an absent metric.
        for provider in ("lago", "stripe"):
            for status in ("pending", "processing", "failed"):
                gauge.add_metric([provider, status], backlog.counts.get((provider, status), 0))
        for provider, age in backlog.oldest_pending_age.items():
            oldest.add_metric([provider], age)
        yield gauge
        yield oldest


class BillingBacklogCollector:
    """The billing run's queue and what awaits payment, read at scrape time."""

    def collect(self):
        from billing.selectors import billing_backlog

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


def metrics_view(request):
    registry = CollectorRegistry()
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:  # the client library's own test
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    output = generate_latest(registry)
    database = CollectorRegistry()
    database.register(OutboxBacklogCollector())
    database.register(BillingBacklogCollector())
    output += generate_latest(database)
    return HttpResponse(output, content_type=CONTENT_TYPE_LATEST)
