"""Prometheus metrics: request latency, outbox backlog, and whatever the apps register.

Under gunicorn with several workers, set PROMETHEUS_MULTIPROC_DIR so the samples of all
workers are added up at scrape time.
"""

import os
import re
import time

from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from core.health import run_checks

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


# Gauges read from the database at scrape time (always true, never stale). Each app
# registers its own in its AppConfig.ready(): core knows none of them.
_database_collectors: list = []


def register_database_collector(collector) -> None:
    """`collector.collect()` yields metric families; a DatabaseError yields nothing."""
    if all(type(c) is not type(collector) for c in _database_collectors):
        _database_collectors.append(collector)


class DependencyCollector:
    """`dependency_up{dependency=...}` 1/0, probed at scrape time (never stale).

    A custom collector, not a Gauge: under PROMETHEUS_MULTIPROC_DIR a Gauge would write
    per-process files and mix stale values of other workers into the scrape.
    """

    def collect(self):
        family = GaugeMetricFamily(
            "dependency_up",
            "1 when the dependency answered the readiness probe at scrape time, else 0.",
            labels=["dependency"],
        )
        for name, result in run_checks().items():
            family.add_metric([name], 1 if result == "ok" else 0)
        yield family


def _dependency_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(DependencyCollector())
    return registry


def metrics_view(request):
    registry = CollectorRegistry()
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:  # the client library's own test
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    output = generate_latest(registry)
    database = CollectorRegistry()
    for collector in _database_collectors:
        database.register(collector)
    output += generate_latest(database)
    output += generate_latest(_dependency_registry())
    return HttpResponse(output, content_type=CONTENT_TYPE_LATEST)
