"""Usage read back per subscription and period: each metric's units by its aggregation."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
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


# --- Pricing by dimension: units per charge filter and pricing group -------------------
@dataclass(frozen=True)
class UsageBucket:
    """The events of one charge filter (None: the events no filter matches) and one
    pricing group ({key: value, None when the event lacks it}), aggregated."""

    filter_index: int | None
    grouped_by: dict[str, str | None]
    units: Decimal
    events: int
    # Each event's value in time order, when asked for (the percentage model's input).
    values: tuple[Decimal, ...] = ()
    # The sum of the events' own amounts (the dynamic model's input).
    precise_total_amount_cents: Decimal = Decimal(0)


def usage_buckets(
    *,
    subscription: Subscription,
    metric: BillableMetric,
    start: datetime,
    end: datetime,
    filters: Sequence[tuple[int, Mapping[str, Sequence[str]]]],
    group_keys: Mapping[int | None, Sequence[str]],
    with_values: bool = False,
) -> list[UsageBucket]:
    """One metric's usage over [start, end), split by charge filter and pricing group in
    one query over the period's rows (the (subscription, metric, timestamp) index).

    `filters` are (index, {key: values}) with the most specific first: each event counts
    for the first one it matches (a CASE, evaluated in that order), else for the default.
    `group_keys` are each filter's pricing_group_keys (None: the default's). Only groups
    with events come back."""
    case_params: list[Any] = []
    whens = []
    for index, values in filters:
        conditions = []
        for key, allowed in values.items():
            conditions.append("properties ->> %s = ANY(%s)")
            case_params += [key, list(allowed)]
        whens.append(f"WHEN {' AND '.join(conditions)} THEN {int(index)}")
    bucket = f"CASE {' '.join(whens)} ELSE -1 END" if whens else "-1"
    keys = sorted({key for keys in group_keys.values() for key in keys})
    group_params: list[Any] = []
    columns = []
    for key in keys:
        buckets = [-1 if i is None else int(i) for i, ks in group_keys.items() if key in ks]
        columns.append(
            f"CASE WHEN bucket IN ({', '.join(map(str, buckets))}) THEN properties ->> %s END"
        )
        group_params.append(key)
    values_column = ', array_agg(value ORDER BY "timestamp", id)' if with_values else ""
    sql = f"""
        SELECT bucket, {"".join(c + ", " for c in columns)}
               count(*),
               coalesce(sum(value), 0),
               max(value),
               count(DISTINCT unique_value),
               (array_agg(value ORDER BY "timestamp" DESC, id DESC))[1],
               coalesce(sum(precise_total_amount_cents), 0)
               {values_column}
        FROM (
            SELECT {bucket} AS bucket, properties, value, unique_value,
                   precise_total_amount_cents, "timestamp", id
            FROM {UsageRecord._meta.db_table}
            WHERE subscription_id = %s AND metric_id = %s
              AND "timestamp" >= %s AND "timestamp" < %s
        ) AS events
        GROUP BY {", ".join(str(n) for n in range(1, len(keys) + 2))}
        ORDER BY {", ".join(str(n) for n in range(1, len(keys) + 2))}
    """
    params = [*group_params, *case_params, subscription.pk, metric.pk, start, end]
    result = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for row in cursor.fetchall():
            bucket_index: int | None = None if row[0] == -1 else row[0]
            groups = dict(zip(keys, row[1 : len(keys) + 1], strict=True))
            count, total, maximum, distinct, latest, amounts = row[len(keys) + 1 : len(keys) + 7]
            own_keys = group_keys.get(bucket_index) or ()
            result.append(
                UsageBucket(
                    filter_index=bucket_index,
                    grouped_by={key: groups[key] for key in own_keys},
                    units=_units(metric.aggregation, count, total, maximum, distinct, latest),
                    events=count,
                    values=(
                        tuple(v or Decimal(0) for v in row[len(keys) + 7]) if with_values else ()
                    ),
                    precise_total_amount_cents=Decimal(amounts),
                )
            )
    return result


def _units(
    aggregation: str,
    count: int,
    total: Decimal,
    maximum: Decimal | None,
    distinct: int,
    latest: Decimal | None,
) -> Decimal:
    return {
        "count": Decimal(count),
        "sum": Decimal(total),
        "max": Decimal(maximum or 0),
        "unique_count": Decimal(distinct),
        "latest": Decimal(latest or 0),
    }[aggregation]
