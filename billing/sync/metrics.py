"""The outbox backlog in /metrics, read from the database at scrape time."""

from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily

from billing.sync.outbox import OUTBOX
from billing.sync.selectors import outbox_backlog
from core.metrics import register_database_collector
from core.queue import queue_metrics_register


class OutboxBacklogCollector:
    """Reads the backlog from the database at scrape time: always true, never stale."""

    def collect(self):
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
        retrying = GaugeMetricFamily(
            "outbox_messages_retrying",
            "Pending outbox messages that have failed at least once (the provider keeps "
            "failing them; they retry for more than a day before they fail).",
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
            retrying.add_metric([provider], backlog.retrying.get(provider, 0))
        for provider, age in backlog.oldest_pending_age.items():
            oldest.add_metric([provider], age)
        yield gauge
        yield oldest
        yield retrying


register_database_collector(OutboxBacklogCollector())
queue_metrics_register(OUTBOX)
