"""Usage read back per subscription and period: each metric's units by its aggregation."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal, localcontext
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

_TABLE = UsageRecord._meta.db_table
_CARRIED = (BillableMetric.Aggregation.WEIGHTED_SUM,)

# A recurring sum or unique_count: every event up to the period's end, not just its own.
_RECURRING_SQL = f"""
    SELECT metric_id, coalesce(sum(value), 0), count(DISTINCT unique_value)
    FROM {_TABLE}
    WHERE subscription_id = %s AND metric_id = ANY(%s) AND "timestamp" < %s
    GROUP BY metric_id
"""

# Lago's weighted_sum (events/stores/postgres/weighted_sum_query.rb): the rows are the
# value carried in at the start (a recurring metric's earlier events, else 0), each event's
# change, and 0 at the end; each row's running total is weighted by the seconds until the
# next row over the period's seconds, and the weights summed.
_WEIGHTED_SUM_SQL = f"""
    WITH metrics AS (
        SELECT unnest(%(ids)s::uuid[]) AS metric_id, unnest(%(recurring)s::boolean[]) AS recurring
    ), events_data AS (
        SELECT m.metric_id, %(start)s::timestamptz AS ts, 0 AS ord, 0::bigint AS id,
               CASE WHEN m.recurring THEN coalesce((
                   SELECT sum(value) FROM {_TABLE} e
                   WHERE e.subscription_id = %(subscription)s AND e.metric_id = m.metric_id
                     AND e."timestamp" < %(start)s
               ), 0) ELSE 0 END AS difference
        FROM metrics m
        UNION ALL
        SELECT metric_id, "timestamp", 1, id, coalesce(value, 0)
        FROM {_TABLE}
        WHERE subscription_id = %(subscription)s AND metric_id = ANY(%(ids)s::uuid[])
          AND "timestamp" >= %(start)s AND "timestamp" < %(end)s
        UNION ALL
        SELECT metric_id, %(end)s::timestamptz, 2, 0, 0 FROM metrics
    )
    SELECT metric_id, coalesce(sum(ratio), 0) FROM (
        SELECT metric_id,
               sum(difference) OVER running
               * extract(epoch FROM lead(ts, 1, %(end)s::timestamptz) OVER running - ts)
               / %(seconds)s::numeric AS ratio
        FROM events_data
        WINDOW running AS (
            PARTITION BY metric_id ORDER BY ts, ord, id
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        )
    ) weighted
    GROUP BY metric_id
"""


def usage_units(
    *,
    subscription: Subscription,
    start: datetime,
    end: datetime,
    metrics: Mapping[UUID, BillableMetric] | None = None,
    duration: timedelta | None = None,
) -> dict[UUID, Decimal]:
    """{metric_id: units} for [start, end), each metric by its own aggregation. A recurring
    metric counts its events before `start` too; a weighted sum weights by the share of
    `duration` (the period's length, Lago's charges_duration; default end - start)."""
    if metrics is None:
        metrics = {m.pk: m for m in BillableMetric.objects.all()}
    units: dict[UUID, Decimal] = {}
    with connection.cursor() as cursor:
        cursor.execute(_AGGREGATE_SQL, [subscription.pk, start, end])
        for metric_id, count, total, maximum, distinct, latest in cursor.fetchall():
            metric = metrics.get(metric_id)
            if metric is None or metric.recurring or metric.aggregation in _CARRIED:
                continue  # read by _carried_units, events before the period count too
            units[metric_id] = _by_aggregation(metric, count, total, maximum, distinct, latest)
    units.update(
        _carried_units(
            subscription=subscription, start=start, end=end, metrics=metrics, duration=duration
        )
    )
    return units


def _by_aggregation(
    metric: BillableMetric, count: int, total: Any, maximum: Any, distinct: int, latest: Any
) -> Decimal:
    return {
        "count": Decimal(count),
        "sum": Decimal(total),
        "max": Decimal(maximum or 0),
        "unique_count": Decimal(distinct),
        "latest": Decimal(latest or 0),
    }[metric.aggregation]


# The same aggregates for many (subscription, window) pairs in one statement: a billing
# run's page. The constant bounds let the planner prune partitions before the join.
_AGGREGATE_MANY_SQL = f"""
    SELECT w.ord, r.metric_id,
           count(*),
           coalesce(sum(r.value), 0),
           max(r.value),
           count(DISTINCT r.unique_value),
           (array_agg(r.value ORDER BY r."timestamp" DESC, r.id DESC))[1]
    FROM unnest(%(subscriptions)s::uuid[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
         WITH ORDINALITY AS w(subscription_id, start, finish, ord)
    JOIN {_TABLE} r
      ON r.subscription_id = w.subscription_id
     AND r."timestamp" >= w.start AND r."timestamp" < w.finish
    WHERE r."timestamp" >= %(first)s AND r."timestamp" < %(last)s
    GROUP BY w.ord, r.metric_id
"""

UsageWindow = tuple[UUID, datetime, datetime]


def windows_units(
    windows: Sequence[UsageWindow], metrics: Mapping[UUID, BillableMetric]
) -> dict[UsageWindow, dict[UUID, Decimal]]:
    """usage_units() of many (subscription_id, start, end) windows in one query, for
    metrics that count only their own window's events (neither recurring nor weighted:
    the caller checks; those are refused here rather than priced wrong)."""
    carried = [m.code for m in metrics.values() if m.recurring or m.aggregation in _CARRIED]
    if carried:
        raise ValueError(f"windows_units() cannot price carried metrics {carried}")
    found: dict[UsageWindow, dict[UUID, Decimal]] = {window: {} for window in windows}
    if not windows:
        return found
    with connection.cursor() as cursor:
        cursor.execute(
            _AGGREGATE_MANY_SQL,
            {
                "subscriptions": [w[0] for w in windows],
                "starts": [w[1] for w in windows],
                "ends": [w[2] for w in windows],
                "first": min(w[1] for w in windows),
                "last": max(w[2] for w in windows),
            },
        )
        for ordinal, metric_id, count, total, maximum, distinct, latest in cursor.fetchall():
            metric = metrics.get(metric_id)
            if metric is not None:
                found[windows[ordinal - 1]][metric_id] = _by_aggregation(
                    metric, count, total, maximum, distinct, latest
                )
    return found


def _carried_units(
    *,
    subscription: Subscription,
    start: datetime,
    end: datetime,
    metrics: Mapping[UUID, BillableMetric],
    duration: timedelta | None,
) -> dict[UUID, Decimal]:
    """Recurring sums and unique_counts (their value up to `end`, carried over from the
    earlier periods) and weighted sums, one query for each kind there is."""
    units: dict[UUID, Decimal] = {}
    weighted = [m for m in metrics.values() if m.aggregation in _CARRIED]
    recurring = [m for m in metrics.values() if m.recurring and m.aggregation not in _CARRIED]
    with connection.cursor() as cursor:
        if recurring:
            cursor.execute(_RECURRING_SQL, [subscription.pk, [m.pk for m in recurring], end])
            found = {row[0]: row for row in cursor.fetchall()}
            for metric in recurring:
                _, total, distinct = found.get(metric.pk, (None, 0, 0))
                units[metric.pk] = Decimal(
                    distinct
                    if metric.aggregation == BillableMetric.Aggregation.UNIQUE_COUNT
                    else total
                )
        if weighted:
            seconds = Decimal((duration or (end - start)).total_seconds())
            cursor.execute(
                _WEIGHTED_SUM_SQL,
                {
                    "ids": [m.pk for m in weighted],
                    "recurring": [m.recurring for m in weighted],
                    "subscription": subscription.pk,
                    "start": start,
                    "end": end,
                    "seconds": seconds,
                },
            )
            found = dict(cursor.fetchall())
            for metric in weighted:
                # weighted_sum_service.rb: result.aggregation = value.ceil(20)
                units[metric.pk] = _ceil(Decimal(found.get(metric.pk, 0)), 20)
    return units


# Lago's prorated sum and unique_count (prorated_aggregations/*, postgres_store.rb
# prorated_sum, duration_ratio_sql): each unit is billed for the days it existed in the
# period, from its event's day (or the period's first day, for one carried in) to the
# period's last day, both counted, over the period's days. A unique value counts from the
# first event that named it.
_PRORATED_SQL = f"""
    SELECT coalesce(sum(
        units * ((%(last_day)s::date - greatest(day, %(first_day)s::date)) + 1)::numeric
        / %(days)s::numeric
    ), 0)
    FROM (
        SELECT CASE WHEN %(unique)s THEN 1 ELSE coalesce(value, 0) END AS units,
               ("timestamp" AT TIME ZONE 'UTC')::date AS day
        FROM {_TABLE}
        WHERE subscription_id = %(subscription)s AND metric_id = %(metric)s
          AND "timestamp" < %(end)s AND NOT %(unique)s
        UNION ALL
        SELECT 1, (min("timestamp") AT TIME ZONE 'UTC')::date
        FROM {_TABLE}
        WHERE subscription_id = %(subscription)s AND metric_id = %(metric)s
          AND "timestamp" < %(end)s AND %(unique)s
        GROUP BY unique_value
    ) existed
"""


def prorated_units(
    *,
    subscription: Subscription,
    metric: BillableMetric,
    start: datetime,
    end: datetime,
    duration: timedelta | None = None,
) -> Decimal:
    """A prorated charge's units over [start, end) (UTC days) for a recurring sum or
    unique_count: every unit up to `end`, each weighted by the share of the period's days
    it existed; rounded up to 5 places as Lago's (`compute_event_aggregation.ceil(5)`)."""
    days = Decimal((duration or (end - start)).total_seconds()) / Decimal(86400)
    with connection.cursor() as cursor:
        cursor.execute(
            _PRORATED_SQL,
            {
                "subscription": subscription.pk,
                "metric": metric.pk,
                "end": end,
                "first_day": start.astimezone(UTC).date(),
                "last_day": (end - timedelta(microseconds=1)).astimezone(UTC).date(),
                "days": days,
                "unique": metric.aggregation == BillableMetric.Aggregation.UNIQUE_COUNT,
            },
        )
        (total,) = cursor.fetchone() or (0,)
    return _ceil(Decimal(total), 5)


def _ceil(value: Decimal, places: int) -> Decimal:
    with localcontext(prec=80):
        ceiled = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_CEILING)
        integral = ceiled.to_integral_value()
        return integral if ceiled == integral else ceiled.normalize()


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
