"""Usage read back per subscription and period: each metric's units by its aggregation."""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from django.db import connection
from django.db.models import Sum

from billing.usage.models import UsageRecord
from subscriptions.models import BillableMetric, Subscription

# One pass over the period's rows (one or two monthly partitions), every aggregation at once.
_AGGREGATE_SQL = f"""
    SELECT metric_id,
           count(*),
           coalesce(sum(value), 0),
           max(value),
           count(DISTINCT unique_value),
           (array_agg(value ORDER BY "timestamp" DESC, id DESC))[1]
    FROM {UsageRecord._meta.db_table}
    WHERE subscription_id = %s AND "timestamp" >= %s AND "timestamp" < %s
    GROUP BY metric_id
"""


def usage_units(
    *,
    subscription: Subscription,
    start: datetime,
    end: datetime,
    metrics: Mapping[UUID, BillableMetric] | None = None,
) -> dict[UUID, Decimal]:
    """{metric_id: units} for [start, end), each metric by its own aggregation."""
    if metrics is None:
        metrics = {m.pk: m for m in BillableMetric.objects.all()}
    units: dict[UUID, Decimal] = {}
    with connection.cursor() as cursor:
        cursor.execute(_AGGREGATE_SQL, [subscription.pk, start, end])
        for metric_id, count, total, maximum, distinct, latest in cursor.fetchall():
            metric = metrics.get(metric_id)
            if metric is None:
                continue
            units[metric_id] = {
                "count": Decimal(count),
                "sum": Decimal(total),
                "max": Decimal(maximum or 0),
                "unique_count": Decimal(distinct),
                "latest": Decimal(latest or 0),
            }[metric.aggregation]
    return units


def event_values(
    *, subscription: Subscription, metric: BillableMetric, start: datetime, end: datetime
) -> list[Decimal]:
    """Each event's value in time order (0 for an event without one, a count's): what the
    percentage model prices one by one."""
    return [
        value or Decimal(0)
        for value in UsageRecord.objects.filter(
            subscription_id=subscription.pk,
            metric_id=metric.pk,
            timestamp__gte=start,
            timestamp__lt=end,
        )
        .order_by("timestamp", "id")
        .values_list("value", flat=True)
    ]


def event_amounts_cents(
    *, subscription: Subscription, metric: BillableMetric, start: datetime, end: datetime
) -> Decimal:
    """The sum of the amounts the events carried (`precise_total_amount_cents`, in minor
    units): what the dynamic model charges."""
    total = UsageRecord.objects.filter(
        subscription_id=subscription.pk,
        metric_id=metric.pk,
        timestamp__gte=start,
        timestamp__lt=end,
    ).aggregate(total=Sum("precise_total_amount_cents"))["total"]
    return total or Decimal(0)
