"""Recording usage: every event counted exactly once, however often it is sent.

Duplicates are decided by the database: each accepted transaction_id is inserted into
UsageTransaction with ON CONFLICT DO NOTHING, in the same transaction as its record. A
transaction_id seen before is a duplicate if its content hash matches (the answer is
replayed) and a conflict otherwise. Racing requests with one transaction_id serialise on
the unique index: one inserts, the others see its committed row.
"""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

import orjson
import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from billing.providers import provider_enabled
from billing.usage.forwarding import usage_forwarding_queue
from billing.usage.models import UsageRecord, UsageTransaction
from core.limits import MAX_EVENT_AMOUNT_CENTS, MAX_USAGE_VALUE, decimal_problem
from subscriptions.models import BillableMetric, Subscription, SubscriptionPeriod

MAX_BATCH = 1000
# How far in the future a client's clock may run before its timestamps are refused.
CLOCK_SKEW = timedelta(minutes=5)
NUMERIC = {"sum", "max", "latest", "weighted_sum"}
# The event's own amount in minor units, for a dynamic charge (Lago's event field).
AMOUNT = "precise_total_amount_cents"


@dataclass
class UsageResult:
    transaction_id: str
    status: str  # created | duplicate | conflict | invalid
    errors: list[dict[str, Any]] = field(default_factory=list)
    record: UsageRecord | None = None


@dataclass
class _Checked:
    event: dict[str, Any]
    subscription: Subscription
    metric: BillableMetric
    timestamp: datetime
    content_hash: str
    value: Decimal | None
    unique_value: str | None
    amount_cents: Decimal | None = None


def _error(code: str, detail: str, attr: str | None = None) -> dict[str, Any]:
    return {"code": code, "detail": detail, "attr": attr}


def content_hash(event: dict[str, Any]) -> str:
    """What makes two sends the same event: everything the caller gave, nothing we added.
    An amount is hashed only when given, so events sent without one hash as before."""
    keys = ["subscription", "metric", "timestamp", "properties"]
    if event.get(AMOUNT) is not None:
        keys.append(AMOUNT)
    canonical = json.dumps(
        {k: event.get(k) for k in keys},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


PERIOD_CLOSED = "period_closed"


def _check(
    event: dict[str, Any],
    subscriptions: Mapping[str, Subscription],
    metrics: Mapping[str, BillableMetric],
    now: datetime,
    invoiced_until: Mapping[UUID, datetime] | None = None,
) -> _Checked | list[dict[str, Any]]:
    subscription = subscriptions.get(event["subscription"])
    if subscription is None:
        return [
            _error(
                "unknown_subscription",
                f"No subscription with external_id '{event['subscription']}'.",
                "subscription",
            )
        ]
    if subscription.status != Subscription.Status.ACTIVE:
        return [
            _error(
                "subscription_not_billable",
                f"Subscription '{subscription.external_id}' is {subscription.status}.",
                "subscription",
            )
        ]
    metric = metrics.get(event["metric"])
    if metric is None:
        return [
            _error("unknown_metric", f"No billable metric with code '{event['metric']}'.", "metric")
        ]
    timestamp = event.get("timestamp") or now
    if timestamp > now + CLOCK_SKEW:
        return [_error("timestamp_in_future", "The timestamp is in the future.", "timestamp")]
    assert subscription.started_at is not None  # set when it became active
    if timestamp < subscription.started_at:
        return [
            _error(
                "timestamp_before_subscription",
                "The timestamp is before the subscription started.",
                "timestamp",
            )
        ]
    closed = (invoiced_until or {}).get(subscription.pk)
    if closed is not None and timestamp < closed:
        return [
            _error(
                PERIOD_CLOSED,
                f"The period up to {closed.isoformat()} is invoiced: usage before it can no "
                "longer be counted.",
                "timestamp",
            )
        ]
    properties = event.get("properties") or {}
    value, unique_value = None, None
    if metric.aggregation != BillableMetric.Aggregation.COUNT:
        raw = properties.get(metric.field_name)
        if raw is None:
            return [
                _error(
                    "missing_property",
                    f"Metric '{metric.code}' needs properties.{metric.field_name}.",
                    f"properties.{metric.field_name}",
                )
            ]
        if metric.aggregation in NUMERIC:
            value = _number(raw)
            attr = f"properties.{metric.field_name}"
            if value is None:
                return [_error("property_not_numeric", f"{attr} must be a number.", attr)]
            problem = decimal_problem(value, limit=MAX_USAGE_VALUE, negative=True)
            if problem:
                return [_error("value_out_of_range", f"{attr} {problem}.", attr)]
            if value < 0 and not metric.negative_values_allowed:
                # A negative value lowers the bill; only a metric made for corrections
                # takes one.
                return [
                    _error(
                        "negative_value_not_allowed",
                        f"{attr} must not be negative: metric '{metric.code}' does not "
                        "allow negative values.",
                        attr,
                    )
                ]
        else:
            unique_value = str(raw)[:1000]
    amount_cents = None
    if event.get(AMOUNT) is not None:
        amount_cents = _number(event[AMOUNT])
        if amount_cents is None:
            return [_error("invalid", f"{AMOUNT} must be a decimal number.", AMOUNT)]
        problem = decimal_problem(amount_cents, limit=MAX_EVENT_AMOUNT_CENTS, negative=True)
        if problem:
            return [_error("value_out_of_range", f"{AMOUNT} {problem}.", AMOUNT)]
        if amount_cents < 0 and not metric.negative_values_allowed:
            return [
                _error(
                    "negative_value_not_allowed",
                    f"{AMOUNT} must not be negative: metric '{metric.code}' does not allow "
                    "negative values.",
                    AMOUNT,
                )
            ]
    return _Checked(
        event,
        subscription,
        metric,
        timestamp,
        content_hash(event),
        value,
        unique_value,
        amount_cents,
    )


def _number(raw: Any) -> Decimal | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    if isinstance(raw, str) and len(raw) > 100:
        return None  # no number we accept needs more characters; parsing more costs time
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        return None


# savepoint=False: inside the API's transaction a savepoint would cost two round trips
# for nothing, as a refused request rolls the whole transaction back anyway.
@transaction.atomic(savepoint=False)
def usage_record_batch(
    *, events: list[dict[str, Any]], with_records: bool = False
) -> list[UsageResult]:
    """Record up to MAX_BATCH events; each gets its own result, valid ones are stored.
    `with_records` also returns the stored rows (a batch answer does not show them)."""
    now = timezone.now()
    subscriptions, metrics, invoiced_until = _hold_against_invoicing(
        {e["subscription"] for e in events}, {e["metric"] for e in events}
    )
    results: list[tuple[UsageResult, str | None]] = []
    checked: dict[str, _Checked] = {}
    for event in events:
        outcome = _check(event, subscriptions, metrics, now, invoiced_until)
        result = UsageResult(transaction_id=event["transaction_id"], status="invalid")
        if isinstance(outcome, list):
            result.errors = outcome
            results.append((result, None))
            continue
        checked.setdefault(event["transaction_id"], outcome)  # the first send in the batch
        results.append((result, outcome.content_hash))
    records = _claim_and_insert(list(checked.values()), now, with_records)
    created = set(records)
    stored = {tid: checked[tid].content_hash for tid in created}
    if len(created) < len(checked):  # some were recorded before: duplicates or conflicts
        stored.update(
            UsageTransaction.objects.filter(transaction_id__in=set(checked) - created).values_list(
                "transaction_id", "content_hash"
            )
        )
    if created and _forwarding_to_lago():
        usage_forwarding_queue()
    answered: set[str] = set()
    for result, this_hash in results:
        if this_hash is None:
            continue
        tid = result.transaction_id
        if tid in records and tid not in answered:
            result.status, result.record = "created", records[tid]
            answered.add(tid)  # a second send of it in this batch is not "created"
        elif stored.get(tid) == this_hash:
            result.status = "duplicate"
        else:
            result.status = "conflict"
            result.errors = [
                _error(
                    "transaction_id_conflict",
                    "This transaction_id was used for another event.",
                    "transaction_id",
                )
            ]
    _replays_of_invoiced_events(results, events)
    return [result for result, _ in results]


def _hold_against_invoicing(
    external_ids: set[str], codes: set[str]
) -> tuple[dict[str, Subscription], dict[str, BillableMetric], dict[UUID, datetime]]:
    """The batch's subscriptions by external_id, FOR KEY SHARE (batches do not block each
    other, but invoicing, FOR UPDATE, waits for them and they for it); then, read after
    that lock is held, {subscription id: end of its last invoiced period} (usage before it
    is closed) and the batch's metrics by code.

    Two statements, so the second's snapshot is taken once the lock is held: a recording
    that waited for an invoicing to commit sees the period it billed. (Read in the locking
    statement, the billed period stayed invisible to it, and the event counted into a
    period already invoiced.) Pipelined: BEGIN and both go in one round trip."""
    if not external_ids:
        return {}, {}, {}
    connection.ensure_connection()
    raw = connection.connection
    with raw.pipeline(), raw.cursor() as locking, raw.cursor() as reading:
        locking.execute(
            f"""
            SELECT s.id, s.external_id, s.status, s.started_at
            FROM {Subscription._meta.db_table} s
            WHERE s.external_id = ANY(%s)
            ORDER BY s.id
            FOR KEY SHARE OF s
            """,
            [list(external_ids)],
        )
        reading.execute(
            f"""
            SELECT s.id, NULL, (SELECT max(p."end") FROM {SubscriptionPeriod._meta.db_table} p
                                WHERE p.subscription_id = s.id AND p.billed_at IS NOT NULL
                                  AND p.reason <> %s),
                   NULL, NULL, false
            FROM {Subscription._meta.db_table} s
            WHERE s.external_id = ANY(%s)
            UNION ALL
            SELECT m.id, m.code, NULL, m.aggregation, m.field_name, m.negative_values_allowed
            FROM {BillableMetric._meta.db_table} m
            WHERE m.code = ANY(%s)
            """,
            [SubscriptionPeriod.Reason.ADVANCE.value, list(external_ids), list(codes)],
        )
        held = locking.fetchall()
        read = reading.fetchall()
    subscriptions = {
        external_id: Subscription(
            id=pk, external_id=external_id, status=status, started_at=started_at
        )
        for pk, external_id, status, started_at in held
    }
    held_ids = {pk for pk, *_ in held}
    invoiced_until, metrics = {}, {}
    for pk, code, until, aggregation, field_name, negatives in read:
        if code is None:
            if until is not None and pk in held_ids:
                invoiced_until[pk] = until
        else:
            metrics[code] = BillableMetric(
                id=pk,
                code=code,
                aggregation=aggregation,
                field_name=field_name,
                negative_values_allowed=negatives,
            )
    return subscriptions, metrics, invoiced_until


def _replays_of_invoiced_events(
    results: list[tuple[UsageResult, str | None]], events: list[dict[str, Any]]
) -> None:
    """A retry of an event that was counted before its period was invoiced is a
    duplicate (it was counted), not a refusal."""
    closed = {
        id(result): event
        for (result, _), event in zip(results, events, strict=True)
        if result.errors and result.errors[0]["code"] == PERIOD_CLOSED
    }
    if not closed:
        return
    hashes = dict(
        UsageTransaction.objects.filter(
            transaction_id__in={e["transaction_id"] for e in closed.values()}
        ).values_list("transaction_id", "content_hash")
    )
    for result, _ in results:
        event = closed.get(id(result))
        if event is not None and hashes.get(event["transaction_id"]) == content_hash(event):
            result.status, result.errors = "duplicate", []


def _bound_cursor() -> psycopg.Cursor[Any]:
    """A psycopg cursor that sends parameters apart from the SQL, the arrays in binary (%b):
    Django's client-side binding quotes every array element in Python, a third of a
    batch's time."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def _forwarding_to_lago() -> bool:
    return settings.BILLING_ENGINE == "lago" and provider_enabled("lago")


def _claim_and_insert(
    items: list[_Checked], now: datetime, with_records: bool
) -> dict[str, UsageRecord | None]:
    """Claim the transaction ids (ON CONFLICT DO NOTHING) and insert a record for each id
    this call claimed, in one statement: {transaction id: record} of those created. An id
    recorded before is claimed by no one, so a replay writes no row."""
    if not items:
        return {}
    lago = (
        UsageRecord.LagoStatus.PENDING if _forwarding_to_lago() else UsageRecord.LagoStatus.DISABLED
    )
    with _bound_cursor() as cursor:
        cursor.execute(
            f"""
            WITH x AS (
                SELECT * FROM unnest(%b::varchar[], %b::varchar[], %b::uuid[], %b::uuid[],
                                     %b::timestamptz[], %b::text[], %b::numeric[], %b::text[],
                                     %b::numeric[]) AS x(t, h, s, m, ts, p, v, u, a)
            ), claimed AS (
                INSERT INTO {UsageTransaction._meta.db_table}
                    (transaction_id, content_hash, timestamp, created_at)
                SELECT t, h, ts, %b::timestamptz FROM x
                ON CONFLICT (transaction_id) DO NOTHING
                RETURNING transaction_id
            )
            INSERT INTO {UsageRecord._meta.db_table}
                (transaction_id, subscription_id, metric_id, "timestamp", properties, value,
                 unique_value, precise_total_amount_cents, received_at, lago_status)
            SELECT x.t, x.s, x.m, x.ts, x.p::jsonb, x.v, x.u, x.a, %b::timestamptz, %b::text
            FROM x JOIN claimed ON claimed.transaction_id = x.t
            RETURNING id, transaction_id
            """,
            [
                [c.event["transaction_id"] for c in items],
                [c.content_hash for c in items],
                [c.subscription.pk for c in items],
                [c.metric.pk for c in items],
                [c.timestamp for c in items],
                [json_bytes(c.event.get("properties") or {}).decode() for c in items],
                [c.value for c in items],
                [c.unique_value for c in items],
                [c.amount_cents for c in items],
                now,
                now,
                lago,
            ],
        )
        ids = {tid: pk for pk, tid in cursor.fetchall()}
    if not with_records:
        return dict.fromkeys(ids)
    return {
        c.event["transaction_id"]: UsageRecord(
            id=ids[c.event["transaction_id"]],
            transaction_id=c.event["transaction_id"],
            subscription=c.subscription,
            metric=c.metric,
            timestamp=c.timestamp,
            properties=c.event.get("properties") or {},
            value=c.value,
            unique_value=c.unique_value,
            precise_total_amount_cents=c.amount_cents,
            received_at=now,
            lago_status=lago,
        )
        for c in items
        if c.event["transaction_id"] in ids
    }


def parse_event(raw: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Check one incoming event's shape: (event, []) or (None, errors).

    Written out by hand rather than as a DRF serializer: it runs for every event of every
    batch, and building serializer fields per event cost most of a batch's time.
    """
    if not isinstance(raw, dict):
        return None, [_error("invalid", "An event must be an object.")]
    errors = []
    event: dict[str, Any] = {}
    for name in ("transaction_id", "subscription", "metric"):
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            errors.append(_error("required", "A non-empty string is required.", name))
        elif len(value) > 255 or "\x00" in value:
            errors.append(_error("invalid", "At most 255 characters, no NUL.", name))
        else:
            event[name] = value
    timestamp = raw.get("timestamp")
    if timestamp is not None:
        parsed = _datetime_of(timestamp)
        if parsed is None:
            errors.append(_error("invalid", "An ISO 8601 date-time is required.", "timestamp"))
        else:
            event["timestamp"] = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    properties = raw.get("properties", {})
    if not isinstance(properties, dict):
        errors.append(_error("invalid", "properties must be an object.", "properties"))
    elif b"\\u0000" in json_bytes(properties):
        errors.append(_error("invalid", "Must not contain NUL characters.", "properties"))
    else:
        event["properties"] = properties
    amount = raw.get(AMOUNT)
    if amount is not None:
        # A decimal string, as Lago takes it ("1234.56"), or a number; checked in _check.
        if isinstance(amount, bool) or not isinstance(amount, str | int | float):
            errors.append(_error("invalid", "A decimal string is required.", AMOUNT))
        else:
            event[AMOUNT] = amount
    return (None, errors) if errors else (event, [])


def json_bytes(value: Any) -> bytes:
    """`value` as JSON, by orjson (a tenth of json.dumps's time, twice per event); an
    integer past 64 bits, which orjson refuses, by the standard library."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value).encode()


def _datetime_of(value: Any) -> datetime | None:
    """An ISO 8601 date-time, or None. Django's parser raises ValueError on a well-formed
    but impossible date (Feb 30, month 13): that is the caller's error, not ours."""
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None
