"""Usage: recording events through the full stack, and reading a period's aggregate back
from millions of them; each figure against a baseline measured in the same run.

1. Batch ingestion, in events/s (1,000 events per batch):
     batch-full  POST /api/v1/usage/batch/ with `Authorization: Bearer <key>` through
                 gunicorn: middleware, DRF, API key auth, the batch and per-event
                 serializers, billing.usage.usage_record_batch (subscription and metric
                 look-ups, checks, content hashes, INSERT ... ON CONFLICT into
                 billing_usagetransaction, INSERT into billing_usagerecord) and the answer.
     batch-copy  the same rows (same columns, same tables, one transaction per batch as the
                 service) written by psycopg 3's `cursor.copy()`: COPY ... FROM STDIN into
                 billing_usagetransaction, then into billing_usagerecord. The COPY text is
                 rendered before the clock starts; a batch only swaps in its transaction ids,
                 a microsecond and the receipt time. No HTTP, no Python per row.
   Both get BENCH_USAGE_BATCH_THREADS clients (each its own connection). The HTTP client
   sends pre-rendered bodies the same way, so neither client does per-event work.
2. Single events, in requests/s and latency:
     single-full  POST /api/v1/usage/ (the same stack, one event).
     single-bare  POST /bench/bare-usage/ (bench.views.bare_usage_record): the same body,
                  the same two rows in one statement; the middleware runs, nothing else.
3. The aggregate of one subscription-period (billing.usage_selectors' SQL, as is) on a
   table of BENCH_USAGE_ROWS events (1,000 subscriptions, 3 metrics, 6 calendar months):
     aggregate          the query as the service runs it (partition pruning to the month,
                        then the (subscription_id, metric_id, timestamp) index).
     aggregate-seqscan  the same query in a transaction with enable_indexscan,
                        enable_bitmapscan and enable_indexonlyscan off: a sequential scan
                        of the month's partition, then the GROUP BY. (Chosen over a GROUP BY
                        of every row filtered afterwards: partition pruning still applies,
                        so this is the stronger baseline, and its answer must equal ours.)
   The queries alternate between the two, over BENCH_USAGE_QUERIES (subscription, month)
   pairs; each answer is compared with the other's.
4. buckets: billing.usage.selectors.usage_buckets, the pricing feature's query (one
   metric's period split by charge filter and pricing group: BUCKET_FILTERS, and
   BUCKET_GROUP_KEYS on the token events' `model` and `region`), over the same pairs;
   each answer's event count is checked against a plain count. Then the aggregate and
   the buckets over 1, 2, 3 and 6 months of 10 subscriptions: p99 against the events a
   query reads, fitted to a line, gives the events per subscription-period at which the
   p99 would reach 20 ms (the table's size does not enter: each query reads its own
   index range of its own partitions).

In the summary table, the batch targets count events (requests, req/s), their latencies
are per batch, their errors are failed batches and rows missing afterwards. Every
transaction id is new; the rows each target stored are counted afterwards, and must match
what was answered (every event of a 200 batch stored, no other).

Data. Ingestion uses its own metric (bench_usage_tokens, a `sum` of properties.tokens),
plan, customer and 10 subscriptions, made with the services and started 100 days back; the
events' timestamps spread over the last 75 days (3 to 4 monthly partitions). Their rows are
deleted (by that metric, and the dedupe rows by transaction-id prefix) at the start of each
run. The aggregate dataset has metrics, a plan, a customer and 1,000 subscriptions of its
own (bulk-created with fixed ids, active since the first month of the data, re-created if a
reset truncated them) and is loaded once, with INSERT ... SELECT FROM generate_series in
chunks, then VACUUM ANALYZE. It is kept between runs (the table bench_usage_dataset records
it) and reused if it holds at least BENCH_USAGE_ROWS rows; a smaller one is deleted and
reloaded. It has no dedupe rows: the aggregate never reads them.

Environment: BENCH_SECONDS (10, measured seconds per target), BENCH_MAX_REQUESTS (per
target; batches for the batch targets), BENCH_THREADS (8, single-event clients),
BENCH_WARMUP (100 single events per target), BENCH_WORKERS (2) and BENCH_SERVER_THREADS (1)
for gunicorn, BENCH_USAGE_BATCH_THREADS (4), BENCH_USAGE_BATCH_WARMUP (8 batches per
target), BENCH_USAGE_ROWS (10_000_000), BENCH_USAGE_LOAD_SECONDS (1800, the most the load
may take), BENCH_USAGE_QUERIES (50 per target), BENCH_USAGE_QUERY_SECONDS (300).
"""

import itertools
import json
import random
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bench import Result
from bench._harness import (
    HOST,
    GunicornServer,
    LoadStats,
    delete_usage,
    env_float,
    env_int,
    generate_load,
)

NAME = "usage"
BATCH_PATH = "/api/v1/usage/batch/"
SINGLE_PATH = "/api/v1/usage/"
BARE_PATH = "/bench/bare-usage/"
BATCH_SIZE = 1000
TEMPLATES = 32  # batches of distinct events; a batch reuses one with new ids and times

# Every transaction id ingestion writes starts with this (the reset deletes by it).
TX_PREFIX = "bench-usage-"
INGEST = "bench-usage-ingest"
INGEST_METRIC = ("bench_usage_tokens", "sum", "tokens")
INGEST_SUBSCRIPTIONS = 10
INGEST_STARTED = timedelta(days=100)
INGEST_SPREAD = timedelta(days=75)

AGG = "bench-usage-agg"
AGG_METRICS = (
    ("bench_usage_agg_tokens", "sum", "tokens"),
    ("bench_usage_agg_peak_gb", "max", "gb"),
    ("bench_usage_agg_users", "unique_count", "user"),
)
AGG_SUBSCRIPTIONS = 1000
AGG_MONTHS = 6
AGG_ID_NAMESPACE = uuid.UUID("5d0c1f55-0b8e-4c8f-9d43-6b1f0d3a7e21")
DATASET_TABLE = "bench_usage_dataset"
# The dataset's shape: a new name when LOAD_SQL changes, so a kept dataset of another
# shape is reloaded. "dimensions": token events carry a model and a region (the buckets).
DATASET_NAME = "aggregate-dimensions"
# The charge filters and pricing groups the `buckets` figure prices tokens by (the
# pricing feature's usage_buckets, as a charge with filters and group keys calls it).
BUCKET_MODELS = ("gpt-4o", "gpt-4o-mini", "o1", "claude-sonnet")
BUCKET_FILTERS = (
    (0, {"model": ["o1"]}),
    (1, {"model": ["gpt-4o", "gpt-4o-mini"], "region": ["eu"]}),
)
BUCKET_GROUP_KEYS = {0: ["region"], 1: [], None: ["model", "region"]}
CHUNK_ROWS = 500_000
BYTES_PER_ROW = 400  # heap, indexes and WAL, with room to spare (about 250 measured)

# Numbers of the COPY batches, unique within the process (as the harness numbers requests).
_copy_sequence = itertools.count(1)

# Placeholders of the pre-rendered batches.
TID, MICRO, NOW = b"@@TID@@", b"@@US@@", b"@@NOW@@"

COPY_TRANSACTIONS = (
    'COPY billing_usagetransaction (transaction_id, content_hash, "timestamp", created_at) '
    "FROM STDIN"
)
COPY_RECORDS = (
    'COPY billing_usagerecord (transaction_id, subscription_id, metric_id, "timestamp", '
    "properties, value, unique_value, received_at, lago_status) FROM STDIN"
)


# --- Fixtures --------------------------------------------------------------------------
def _metric(code: str, aggregation: str, field_name: str):
    from subscriptions.catalog import metric_create
    from subscriptions.models import BillableMetric

    return BillableMetric.objects.filter(code=code).first() or metric_create(
        code=code, name=code, aggregation=aggregation, field_name=field_name
    )


def _plan(code: str, metrics: list, interval: str = "monthly"):
    from subscriptions.catalog import plan_create
    from subscriptions.models import Plan

    return Plan.objects.filter(code=code).first() or plan_create(
        code=code,
        name=code,
        interval=interval,
        amount_cents=0,
        currency="EUR",
        charges=[
            {"metric": metric, "charge_model": "standard", "properties": {"amount": "0.001"}}
            for metric in metrics
        ],
    )


def _customer(external_id: str):
    from customers.models import Customer
    from customers.services import customer_create

    return Customer.objects.filter(external_id=external_id).first() or customer_create(
        external_id=external_id, name=external_id, currency="EUR"
    )


@dataclass
class Ingest:
    metric_code: str
    metric_id: str
    subscriptions: list[tuple[str, str]]  # (external_id, id)
    lago_status: str
    window: tuple[datetime, datetime]  # where the events' timestamps fall


def _ingest_fixtures() -> Ingest:
    """The ingestion metric, plan, customer and subscriptions (made once, with the
    services; re-made if a reset truncated them), and a clean slate of their usage."""
    from django.conf import settings
    from django.utils import timezone

    from billing.providers import provider_enabled
    from billing.usage.models import UsageRecord
    from subscriptions.models import Subscription
    from subscriptions.services import subscription_create

    metric = _metric(*INGEST_METRIC)
    # Yearly: a start 100 days back is then in the current (or the previous) period, which
    # subscription_create takes without back-dated billing (bill_past_periods), and no
    # period the events fall in is closed.
    plan = _plan(f"{INGEST}-yearly", [metric], interval="yearly")
    customer = _customer(INGEST)
    now = timezone.now()
    subscriptions = []
    for index in range(INGEST_SUBSCRIPTIONS):
        external_id = f"{INGEST}-{index:02d}"
        subscription = Subscription.objects.filter(external_id=external_id).first()
        if subscription is None:
            subscription = subscription_create(
                external_id=external_id,
                customer=customer,
                plan=plan,
                start_at=now - INGEST_STARTED,
            )
        if subscription.status != Subscription.Status.ACTIVE:
            raise RuntimeError(f"subscription {external_id} is {subscription.status}")
        subscriptions.append(subscription)
    started = max(s.started_at for s in subscriptions) + timedelta(minutes=1)
    window = (max(started, now - INGEST_SPREAD), now - timedelta(minutes=10))
    if window[0] >= window[1]:
        raise RuntimeError(f"no valid timestamps for the ingestion subscriptions: {window}")
    lago = (
        UsageRecord.LagoStatus.PENDING
        if settings.BILLING_ENGINE == "lago" and provider_enabled("lago")
        else UsageRecord.LagoStatus.DISABLED
    )
    return Ingest(
        metric_code=metric.code,
        metric_id=str(metric.pk),
        subscriptions=[(s.external_id, str(s.pk)) for s in subscriptions],
        lago_status=str(lago),
        window=window,
    )


# --- Events ----------------------------------------------------------------------------
@dataclass
class Template:
    """One batch of distinct events, rendered three ways with placeholders for the
    transaction-id prefix (TID), the timestamps' microseconds (MICRO) and the time of
    receipt (NOW)."""

    http: bytes  # {"events": [...]} for POST /api/v1/usage/batch/
    transactions: bytes  # COPY text of billing_usagetransaction
    records: bytes  # COPY text of billing_usagerecord
    events: list[tuple[str, str, int]]  # (subscription, timestamp without micro, tokens)


def _templates(ingest: Ingest, seed: int = 6) -> list[Template]:
    from billing.usage.services import content_hash

    rng = random.Random(seed)
    start, end = ingest.window
    span = int((end - start).total_seconds()) - 1
    templates = []
    for t in range(TEMPLATES):
        events, http, transactions, records = [], [], [], []
        for i in range(BATCH_SIZE):
            external_id, subscription_id = ingest.subscriptions[
                (t * BATCH_SIZE + i) % len(ingest.subscriptions)
            ]
            moment = (start + timedelta(seconds=rng.randrange(span))).replace(microsecond=0)
            second = moment.strftime("%Y-%m-%dT%H:%M:%S")
            tokens = rng.randint(1, 5000)
            tid = f"{TID.decode()}-{i}"
            properties = {"tokens": tokens}
            event = {
                "transaction_id": tid,
                "subscription": external_id,
                "metric": ingest.metric_code,
                "timestamp": f"{second}.{MICRO.decode()}+00:00",
                "properties": properties,
            }
            digest = content_hash({**event, "timestamp": moment})
            events.append((external_id, second, tokens))
            http.append(event)
            stamp = f"{second}.{MICRO.decode()}+00"
            transactions.append(f"{tid}\t{digest}\t{stamp}\t{NOW.decode()}\n")
            records.append(
                f"{tid}\t{subscription_id}\t{ingest.metric_id}\t{stamp}\t"
                f"{json.dumps(properties)}\t{tokens}\t\\N\t{NOW.decode()}\t"
                f"{ingest.lago_status}\n"
            )
        templates.append(
            Template(
                http=json.dumps({"events": http}, separators=(",", ":")).encode(),
                transactions="".join(transactions).encode(),
                records="".join(records).encode(),
                events=events,
            )
        )
    return templates


def _fill(template: bytes, tid: str, n: int, now: str = "") -> bytes:
    out = template.replace(TID, tid.encode()).replace(MICRO, f"{n % 1_000_000:06d}".encode())
    return out.replace(NOW, now.encode()) if now else out


# --- COPY load -------------------------------------------------------------------------
def _copy_load(
    *, target: str, batch, threads: int, seconds: float, max_batches: int | None
) -> LoadStats:
    """`threads` clients, each on its own psycopg connection, for `seconds` or until
    `max_batches` were copied; `batch(n)` gives (transactions, records) COPY text. A batch
    is one transaction: COPY into billing_usagetransaction, then into billing_usagerecord."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    params = {
        "host": db.get("HOST") or HOST,
        "port": db.get("PORT") or 5432,
        "user": db.get("USER") or "postgres",
        "password": db.get("PASSWORD") or None,
        "dbname": db["NAME"],
        "connect_timeout": 5,
        "application_name": "bench-usage-copy",
        "autocommit": True,
    }
    params = {k: v for k, v in params.items() if v is not None}
    stats = LoadStats(target=target)
    lock = threading.Lock()
    budget = itertools.count(1)
    start_barrier = threading.Barrier(threads + 1)
    deadline_box: list[float] = []
    ends: list[float] = []

    def client() -> None:
        latencies: list[float] = []
        failures: dict[str, int] = {}
        samples: list[str] = []
        ok = 0
        conn = None
        try:
            conn = psycopg.connect(**params)
        except psycopg.Error as exc:
            failures[type(exc).__name__] = 1
            samples.append(f"connect: {exc}")
        try:
            start_barrier.wait(timeout=60)
            deadline = deadline_box[0]
            while conn is not None and time.monotonic() < deadline:
                if max_batches is not None and next(budget) > max_batches:
                    break
                transactions, records = batch(next(_copy_sequence))
                started = time.perf_counter()
                try:
                    with conn.transaction(), conn.cursor() as cursor:
                        with cursor.copy(COPY_TRANSACTIONS) as copy:
                            copy.write(transactions)
                        with cursor.copy(COPY_RECORDS) as copy:
                            copy.write(records)
                except psycopg.Error as exc:
                    name = type(exc).__name__
                    failures[name] = failures.get(name, 0) + 1
                    if len(samples) < 3:
                        samples.append(f"COPY: {name}: {str(exc)[:300]}")
                    if conn.broken:
                        break
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                ok += 1
        except threading.BrokenBarrierError:
            failures["barrier broken"] = 1
        finally:
            if conn is not None:
                conn.close()
            with lock:
                ends.append(time.perf_counter())
                stats.ok += ok
                stats.latencies_ms.extend(latencies)
                for key, count in failures.items():
                    stats.failures[key] = stats.failures.get(key, 0) + count
                stats.samples.extend(samples[: max(0, 5 - len(stats.samples))])

    workers = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    cpu_before = time.process_time()
    deadline_box.append(time.monotonic() + seconds)
    started = time.perf_counter()
    start_barrier.wait(timeout=60)
    for worker in workers:
        worker.join(timeout=seconds + 60)  # a COPY of 1,000 rows takes milliseconds
    if any(worker.is_alive() for worker in workers):
        stats.failures["client thread hung"] = sum(w.is_alive() for w in workers)
    stats.seconds = (max(ends) if ends else time.perf_counter()) - started
    stats.client_cpu_seconds = time.process_time() - cpu_before
    return stats


# --- The aggregate dataset -------------------------------------------------------------
@dataclass
class Dataset:
    rows: int
    period_start: datetime
    subscription_ids: list[str]
    metric_ids: list[str]
    load_seconds: float
    loaded_at: datetime
    loaded_now: bool

    @property
    def months(self) -> list[tuple[datetime, datetime]]:
        from subscriptions.periods import add_months

        return [
            (add_months(self.period_start, m), add_months(self.period_start, m + 1))
            for m in range(AGG_MONTHS)
        ]


DATASET_DDL = f"""
CREATE TABLE IF NOT EXISTS {DATASET_TABLE} (
    name text PRIMARY KEY,
    rows bigint NOT NULL,
    period_start timestamptz NOT NULL,
    load_seconds double precision NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now()
)
"""

LOAD_SQL = """
INSERT INTO billing_usagerecord
    (transaction_id, subscription_id, metric_id, "timestamp", properties, value,
     unique_value, received_at, lago_status)
SELECT 'bench-agg-' || g,
       p.subs[1 + (g * 7919) %% p.n],
       p.metrics[1 + x.k],
       x.ts,
       CASE x.k WHEN 0 THEN jsonb_build_object(
                    'tokens', x.v,
                    'model', (ARRAY['gpt-4o', 'gpt-4o-mini', 'o1', 'claude-sonnet'])[1 + g %% 4],
                    'region', (ARRAY['eu', 'us', 'apac'])[1 + (g / 4) %% 3])
                WHEN 1 THEN jsonb_build_object('gb', x.v)
                ELSE jsonb_build_object('user', 'user-' || x.u) END,
       CASE WHEN x.k < 2 THEN x.v END,
       CASE WHEN x.k = 2 THEN 'user-' || x.u END,
       x.ts + interval '1 second',
       'disabled'
FROM (SELECT %s::uuid[] AS subs, %s::uuid[] AS metrics, %s::int AS n,
             %s::timestamptz AS t0, %s::float8 AS step) AS p
CROSS JOIN generate_series(%s::bigint, %s::bigint) AS g
CROSS JOIN LATERAL (
    SELECT ((g / p.n) %% 3)::int AS k,
           p.t0 + make_interval(secs => g * p.step) AS ts,
           (1 + (g * 2654435761) %% 5000)::numeric AS v,
           (g * 40503) %% 200 AS u
) AS x
"""


def _data_disk() -> tuple[str, int]:
    """(PostgreSQL's data directory, or / if it cannot be seen, its free bytes)."""
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            (path,) = cursor.fetchone()
        return path, shutil.disk_usage(path).free
    except Exception:
        return "/", shutil.disk_usage("/").free


def _usage_table_bytes(cursor) -> int:
    cursor.execute(
        "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits "
        "WHERE inhparent = 'billing_usagerecord'::regclass"
    )
    return int(cursor.fetchone()[0])


def _aggregate_subscriptions(customer, plan, period_start: datetime) -> list[str]:
    """The dataset's subscriptions, with fixed ids: bulk-created if missing (a reset that
    truncates subscriptions takes them, never the usage rows that point at them)."""
    from django.utils import timezone

    from subscriptions.models import Subscription
    from subscriptions.periods import period_containing

    now = timezone.now()
    period = period_containing(
        interval="monthly", billing_time="calendar", started_at=period_start, moment=now
    )
    subscriptions = [
        Subscription(
            id=uuid.uuid5(AGG_ID_NAMESPACE, f"{AGG}-{index:04d}"),
            external_id=f"{AGG}-{index:04d}",
            customer=customer,
            plan=plan,
            status=Subscription.Status.ACTIVE,
            billing_time=Subscription.BillingTime.CALENDAR,
            start_at=period_start,
            started_at=period_start,
            current_period_start=period[0],
            current_period_end=period[1],
        )
        for index in range(AGG_SUBSCRIPTIONS)
    ]
    Subscription.objects.bulk_create(subscriptions, batch_size=1000, ignore_conflicts=True)
    found = Subscription.objects.filter(pk__in=[s.pk for s in subscriptions]).count()
    if found != AGG_SUBSCRIPTIONS:
        raise RuntimeError(f"{found} of the {AGG_SUBSCRIPTIONS} dataset subscriptions exist")
    return [str(s.pk) for s in subscriptions]


def _dataset(rows: int, load_seconds: float) -> Dataset:
    """The aggregate dataset of at least `rows` events: the one kept from an earlier run,
    or loaded now (in at most `load_seconds`)."""
    from django.db import connection
    from django.utils import timezone

    from subscriptions.periods import add_months

    metrics = [_metric(*spec) for spec in AGG_METRICS]
    metric_ids = [str(m.pk) for m in metrics]
    plan = _plan(AGG, metrics)
    customer = _customer(AGG)
    with connection.cursor() as cursor:
        cursor.execute(DATASET_DDL)
        cursor.execute(
            f"SELECT rows, period_start, load_seconds, loaded_at FROM {DATASET_TABLE} "
            "WHERE name = %s",
            [DATASET_NAME],
        )
        marker = cursor.fetchone()
        counted = time.perf_counter()
        cursor.execute(
            "SELECT count(*) FROM billing_usagerecord WHERE metric_id = ANY(%s::uuid[])",
            [metric_ids],
        )
        (existing,) = cursor.fetchone()
        counted = time.perf_counter() - counted
    print(f"[{NAME}] aggregate dataset: {existing:,} rows found (counted in {counted:.1f}s)")
    if marker is not None and marker[0] == existing and existing >= rows:
        kept_rows, period_start, kept_seconds, loaded_at = marker
        if existing > rows:
            print(f"[{NAME}] (BENCH_USAGE_ROWS={rows:,}: the kept {existing:,} rows serve)")
        print(
            f"[{NAME}] reusing the dataset loaded {loaded_at:%Y-%m-%d %H:%M} UTC "
            f"(its load took {kept_seconds:.0f}s)",
            flush=True,
        )
        return Dataset(
            rows=kept_rows,
            period_start=period_start,
            subscription_ids=_aggregate_subscriptions(customer, plan, period_start),
            metric_ids=metric_ids,
            load_seconds=kept_seconds,
            loaded_at=loaded_at,
            loaded_now=False,
        )

    # Load: the 6 calendar months before this one (whole monthly partitions).
    this_month = (
        timezone.now().astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )
    period_start = add_months(this_month, -AGG_MONTHS)
    span = (this_month - period_start).total_seconds()
    data_dir, free = _data_disk()
    needed = rows * BYTES_PER_ROW
    print(
        f"[{NAME}] loading {rows:,} events ({AGG_SUBSCRIPTIONS} subscriptions, "
        f"{len(metrics)} metrics, {period_start:%Y-%m-%d} to {this_month:%Y-%m-%d}); "
        f"{free / 1e9:.1f} GB free on {data_dir}, about {needed / 1e9:.1f} GB needed",
        flush=True,
    )
    if free < needed + 5e9:
        raise RuntimeError(f"not enough disk on {data_dir}: {free / 1e9:.1f} GB free")
    subscription_ids = _aggregate_subscriptions(customer, plan, period_start)
    started = time.monotonic()
    deadline = started + load_seconds
    with connection.cursor() as cursor:
        disk_before = _usage_table_bytes(cursor)
        if existing:
            cursor.execute(f"DELETE FROM {DATASET_TABLE}")  # any earlier version
            cursor.execute(
                "DELETE FROM billing_usagerecord WHERE metric_id = ANY(%s::uuid[])",
                [metric_ids],
            )
            print(f"[{NAME}] deleted the previous {cursor.rowcount:,} rows", flush=True)
        for month in range(AGG_MONTHS):  # the migration made them; made here if it aged
            cursor.execute(
                "SELECT billing_usage_partition(%s::date)",
                [add_months(period_start, month).date()],
            )
        cursor.execute("SET synchronous_commit = off")
        try:
            loaded = 0
            while loaded < rows:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError(
                        f"loading took over BENCH_USAGE_LOAD_SECONDS={load_seconds:g} "
                        f"({loaded:,} of {rows:,} rows loaded; reloaded next run)"
                    )
                cursor.execute(f"SET statement_timeout = {int(remaining * 1000) + 1}")
                last = min(rows, loaded + CHUNK_ROWS) - 1
                cursor.execute(
                    LOAD_SQL,
                    [subscription_ids, metric_ids, AGG_SUBSCRIPTIONS, period_start,
                     span / rows, loaded, last],
                )  # fmt: skip
                loaded = last + 1
                elapsed = time.monotonic() - started
                rate = loaded / elapsed
                print(
                    f"[{NAME}]   {loaded:>11,} / {rows:,} rows ({100 * loaded / rows:3.0f}%) "
                    f"in {elapsed:6.1f}s, {rate:,.0f} rows/s, "
                    f"ETA {(rows - loaded) / rate:5.0f}s",
                    flush=True,
                )
            inserted = time.monotonic() - started
            cursor.execute("SET statement_timeout = 0")
            cursor.execute("SET maintenance_work_mem = '512MB'")
            print(f"[{NAME}] VACUUM ANALYZE billing_usagerecord ...", flush=True)
            cursor.execute("VACUUM (ANALYZE) billing_usagerecord")
        finally:
            cursor.execute("RESET statement_timeout")
            cursor.execute("RESET synchronous_commit")
            cursor.execute("RESET maintenance_work_mem")
        took = time.monotonic() - started
        disk_after = _usage_table_bytes(cursor)
        cursor.execute(
            f"INSERT INTO {DATASET_TABLE} (name, rows, period_start, load_seconds) "
            "VALUES (%s, %s, %s, %s)",
            [DATASET_NAME, rows, period_start, took],
        )
    print(
        f"[{NAME}] loaded {rows:,} rows in {took:.1f}s (INSERT ... SELECT {inserted:.1f}s, "
        f"VACUUM ANALYZE {took - inserted:.1f}s; {rows / inserted:,.0f} rows/s); "
        f"billing_usagerecord grew {(disk_after - disk_before) / 1e9:.2f} GB to "
        f"{disk_after / 1e9:.2f} GB (heap and indexes)",
        flush=True,
    )
    return Dataset(
        rows=rows,
        period_start=period_start,
        subscription_ids=subscription_ids,
        metric_ids=metric_ids,
        load_seconds=took,
        loaded_at=timezone.now(),
        loaded_now=True,
    )


# --- Figure 3: the aggregate -----------------------------------------------------------
def _explain(cursor, sql: str, params) -> list[str]:
    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", params)
    keep = ("Scan", "Aggregate", "Workers", "Buffers", "JIT", "Execution Time")
    lines = [row[0] for row in cursor.fetchall()]
    return [line.rstrip() for line in lines if any(word in line for word in keep)][:12]


def _aggregate_figure(dataset: Dataset, queries: int, max_seconds: float) -> list[Result]:
    from django.db import connection, transaction

    from billing.usage.selectors import _AGGREGATE_SQL, usage_units
    from subscriptions.models import Subscription

    naive_settings = (
        "SET LOCAL enable_indexscan = off",
        "SET LOCAL enable_bitmapscan = off",
        "SET LOCAL enable_indexonlyscan = off",
    )
    months = dataset.months
    subscriptions = dataset.subscription_ids

    def params(i: int):
        start, end = months[i % len(months)]
        return [subscriptions[(i * 37) % len(subscriptions)], start, end]

    def ours(i: int):
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(_AGGREGATE_SQL, params(i))
            rows = cursor.fetchall()
        return (time.perf_counter() - started) * 1000, sorted(rows)

    def naive(i: int):
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in naive_settings:
                cursor.execute(statement)
            started = time.perf_counter()
            cursor.execute(_AGGREGATE_SQL, params(i))
            rows = cursor.fetchall()
        return (time.perf_counter() - started) * 1000, sorted(rows)

    with connection.cursor() as cursor:
        plan_ours = _explain(cursor, _AGGREGATE_SQL, params(0))
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in naive_settings:
            cursor.execute(statement)
        plan_naive = _explain(cursor, _AGGREGATE_SQL, params(0))
    print(f"[{NAME}] plan of the aggregate (EXPLAIN ANALYZE, first query):")
    for line in plan_ours:
        print(f"[{NAME}]   ours  | {line}")
    for line in plan_naive:
        print(f"[{NAME}]   naive | {line}")
    if any("Index" in line for line in plan_naive) or not any(
        "Index" in line for line in plan_ours
    ):
        print(f"[{NAME}] !!! the plans are not the ones described (index vs seq scan)")

    for i in range(3):  # warm-up: the same data, not counted
        ours(i)
        naive(i)
    totals = {target: LoadStats(target) for target in ("aggregate", "aggregate-seqscan")}
    results = {}
    started = time.monotonic()
    for i in range(queries):
        if time.monotonic() - started > max_seconds:
            print(f"[{NAME}] stopped after {i} queries: BENCH_USAGE_QUERY_SECONDS={max_seconds:g}")
            break
        for target, query in (("aggregate", ours), ("aggregate-seqscan", naive)):
            ms, rows = query(i)
            totals[target].latencies_ms.append(ms)
            totals[target].seconds += ms / 1000
            totals[target].ok += 1
            results[target] = rows
        if results["aggregate"] != results["aggregate-seqscan"]:
            totals["aggregate"].failures["answer differs from the seq scan's"] = (
                totals["aggregate"].failures.get("answer differs from the seq scan's", 0) + 1
            )
            totals["aggregate"].samples.append(f"query {i}: {params(i)}")
        if not results["aggregate"]:
            totals["aggregate"].failures["no usage in the period"] = 1

    # The service's function around the query (it also reads every metric), for reference.
    subscription = Subscription.objects.get(pk=subscriptions[0])
    units_ms = []
    for i in range(min(queries, 50)):
        start, end = months[i % len(months)]
        begun = time.perf_counter()
        usage_units(subscription=subscription, start=start, end=end)
        units_ms.append((time.perf_counter() - begun) * 1000)
    units = LoadStats("usage_units", latencies_ms=units_ms)

    ours_stats, naive_stats = totals["aggregate"], totals["aggregate-seqscan"]
    per_period = dataset.rows / AGG_SUBSCRIPTIONS / AGG_MONTHS
    p50, p99 = ours_stats.percentile_ms(50), ours_stats.percentile_ms(99)
    print(
        f"[{NAME}] 3. aggregate of one subscription-month over {dataset.rows:,} events "
        f"(~{per_period:,.0f} events per subscription-month, {ours_stats.ok} queries each):\n"
        f"[{NAME}]      ours (index)     p50 {ours_stats.percentile_ms(50):8.2f} ms  "
        f"p99 {p99:8.2f} ms   (target < 20 ms: {'met' if p99 < 20 else 'MISSED'})\n"
        f"[{NAME}]      naive (seq scan) p50 {naive_stats.percentile_ms(50):8.2f} ms  "
        f"p99 {naive_stats.percentile_ms(99):8.2f} ms\n"
        f"[{NAME}]      ours is {naive_stats.percentile_ms(50) / p50:,.0f}x "
        f"faster at p50, {naive_stats.percentile_ms(99) / p99:,.0f}x at p99; "
        f"usage_units() around it p50 {units.percentile_ms(50):.2f} ms "
        f"p99 {units.percentile_ms(99):.2f} ms",
        flush=True,
    )
    extra = {
        "dataset_rows": float(dataset.rows),
        "dataset_load_seconds": dataset.load_seconds,
        "usage_units_p50_ms": units.percentile_ms(50),
        "usage_units_p99_ms": units.percentile_ms(99),
    }
    return [
        _result(ours_stats, baseline=naive_stats, extra=extra),
        _result(naive_stats, extra={"dataset_rows": float(dataset.rows)}),
    ]


# --- Figure 4: buckets (filters and group keys), and where the 20 ms stops holding --------
def _buckets_figure(dataset: Dataset, queries: int, max_seconds: float) -> list[Result]:
    """usage_buckets (the pricing feature's query: one metric's period split by charge
    filter and pricing group) as a charge with BUCKET_FILTERS and BUCKET_GROUP_KEYS calls
    it, over the same subscription-months as the aggregate; each answer's events are
    checked against a plain count. Then both queries over 1, 2, 3 and 6 months of the same
    subscriptions: the latency per event, and the events per subscription-period at which
    the p99 would reach 20 ms."""
    from django.db import connection

    from billing.usage.selectors import _AGGREGATE_SQL, usage_buckets
    from subscriptions.models import BillableMetric, Subscription

    metric = BillableMetric.objects.get(code=AGG_METRICS[0][0])
    by_id = Subscription.objects.in_bulk(dataset.subscription_ids)
    subscriptions = [by_id[uuid.UUID(pk)] for pk in dataset.subscription_ids]
    months = dataset.months

    def buckets(subscription, start, end) -> tuple[float, int]:
        begun = time.perf_counter()
        found = usage_buckets(
            subscription=subscription,
            metric=metric,
            start=start,
            end=end,
            filters=BUCKET_FILTERS,
            group_keys=BUCKET_GROUP_KEYS,
        )
        return (time.perf_counter() - begun) * 1000, sum(b.events for b in found)

    def aggregate(subscription, start, end) -> tuple[float, int]:
        with connection.cursor() as cursor:
            begun = time.perf_counter()
            cursor.execute(_AGGREGATE_SQL, [subscription.pk, start, end])
            rows = cursor.fetchall()
        return (time.perf_counter() - begun) * 1000, sum(row[1] for row in rows)

    def counted(subscription, start, end) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM billing_usagerecord WHERE subscription_id = %s "
                'AND metric_id = %s AND "timestamp" >= %s AND "timestamp" < %s',
                [subscription.pk, metric.pk, start, end],
            )
            return cursor.fetchone()[0]

    stats = LoadStats("buckets")
    events: list[int] = []
    started = time.monotonic()
    for i in range(3):  # warm-up, not counted
        start, end = months[i % len(months)]
        buckets(subscriptions[(i * 37) % len(subscriptions)], start, end)
    for i in range(queries):
        if time.monotonic() - started > max_seconds:
            break
        subscription = subscriptions[(i * 37) % len(subscriptions)]
        start, end = months[i % len(months)]
        ms, found = buckets(subscription, start, end)
        stats.latencies_ms.append(ms)
        stats.seconds += ms / 1000
        stats.ok += 1
        events.append(found)
        if i < 10 and found != counted(subscription, start, end):
            stats.failures["events differ from a plain count"] = 1
            stats.samples.append(f"query {i}: {found} events in the buckets")

    # Latency against events per query: the same 10 subscriptions over longer spans.
    sample = subscriptions[:: max(1, len(subscriptions) // 10)][:10]
    spans = [1, 2, 3, AGG_MONTHS]
    points: dict[str, list[tuple[float, float]]] = {"aggregate": [], "buckets": []}
    print(f"[{NAME}] 4. latency against the events a query reads (10 subscriptions, 3 rounds):")
    for span in spans:
        start, end = months[0][0], months[span - 1][1]
        for name, query in (("aggregate", aggregate), ("buckets", buckets)):
            query(sample[0], start, end)  # warm
            timings = [query(sub, start, end) for _ in range(3) for sub in sample]
            lat = sorted(ms for ms, _ in timings)
            read = sum(n for _, n in timings) / len(timings)
            p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
            points[name].append((read, p99))
            print(
                f"[{NAME}]      {name:<9} {span} month(s)  {read:8,.0f} events/query  "
                f"p50 {lat[len(lat) // 2]:7.2f} ms  p99 {p99:7.2f} ms",
                flush=True,
            )
    extra: dict[str, float] = {
        "events_per_query": sorted(events)[len(events) // 2] if events else 0
    }
    for name, pts in points.items():
        slope, intercept = _fit(pts)
        at_20ms = (20 - intercept) / slope if slope > 0 else float("inf")
        extra[f"{name}_ms_per_1000_events"] = slope * 1000
        extra[f"{name}_events_at_20ms_p99"] = at_20ms
        print(
            f"[{NAME}]      {name}: p99 {intercept:.2f} ms + {slope * 1000:.3f} ms per 1,000 "
            f"events read: 20 ms at about {at_20ms:,.0f} events per subscription-period",
            flush=True,
        )
    print(
        f"[{NAME}]      buckets at 1 month: p50 {stats.percentile_ms(50):.2f} ms  "
        f"p99 {stats.percentile_ms(99):.2f} ms over {stats.ok} queries "
        f"(median {extra['events_per_query']:,.0f} token events each; target < 20 ms: "
        f"{'met' if stats.percentile_ms(99) < 20 else 'MISSED'})",
        flush=True,
    )
    return [_result(stats, extra=extra)]


def _fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares y = slope * x + intercept."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0
    return slope, mean_y - slope * mean_x


# --- Results ---------------------------------------------------------------------------
def _result(
    stats: LoadStats,
    baseline: LoadStats | None = None,
    *,
    events_per_request: int = 1,
    extra: dict[str, float] | None = None,
) -> Result:
    ratio = None
    if baseline is not None and baseline.rps:
        ratio = stats.rps / baseline.rps
    return Result(
        benchmark=NAME,
        target=stats.target,
        requests=stats.requests * events_per_request,
        errors=stats.errors,
        seconds=stats.seconds,
        rps=stats.rps * events_per_request,
        p50_ms=stats.percentile_ms(50),
        p99_ms=stats.percentile_ms(99),
        baseline=baseline.target if baseline is not None else None,
        ratio=ratio,
        extra={
            "client_cpu_percent": 100 * stats.client_cpu_seconds / (stats.seconds or 1),
            **(extra or {}),
        },
    )


def _segment_line(index: int, stats: LoadStats, unit: str, per_request: int = 1) -> str:
    return (
        f"[{NAME}] segment {index} {stats.target:<12} {stats.requests * per_request:8d} "
        f"{unit}  {stats.rps * per_request:9.1f} {unit}/s  "
        f"p50 {stats.percentile_ms(50):7.2f} ms  p99 {stats.percentile_ms(99):7.2f} ms  "
        f"errors {stats.errors}  "
        f"client cpu {100 * stats.client_cpu_seconds / (stats.seconds or 1):.0f}%"
    )


def _stored(ingest: Ingest, run_id: str) -> dict[str, tuple[int, int]]:
    """{tag: (records, dedupe rows)} of this run's transaction ids."""
    from django.db import connection

    prefix = f"{TX_PREFIX}{run_id}-%"
    counts: dict[str, list[int]] = {}
    with connection.cursor() as cursor:
        for column, sql in enumerate(
            [
                "SELECT split_part(transaction_id, '-', 4), count(*) FROM billing_usagerecord "
                "WHERE metric_id = %s AND transaction_id LIKE %s GROUP BY 1",
                "SELECT split_part(transaction_id, '-', 4), count(*) "
                "FROM billing_usagetransaction WHERE transaction_id LIKE %s GROUP BY 1",
            ]
        ):
            cursor.execute(sql, [ingest.metric_id, prefix] if column == 0 else [prefix])
            for tag, count in cursor.fetchall():
                counts.setdefault(tag, [0, 0])[column] = count
    return {tag: (records, dedupe) for tag, (records, dedupe) in counts.items()}


def run() -> list[Result]:
    from django.db import connection

    from core.models import ApiKey

    seconds = env_float("BENCH_SECONDS", 10.0)
    max_requests = env_int("BENCH_MAX_REQUESTS", 0) or None
    threads = env_int("BENCH_THREADS", 8)
    warmup = env_int("BENCH_WARMUP", 100)
    batch_threads = env_int("BENCH_USAGE_BATCH_THREADS", 4)
    batch_warmup = env_int("BENCH_USAGE_BATCH_WARMUP", 8)
    rows = env_int("BENCH_USAGE_ROWS", 10_000_000)
    load_seconds = env_float("BENCH_USAGE_LOAD_SECONDS", 1800.0)
    queries = env_int("BENCH_USAGE_QUERIES", 50)
    query_seconds = env_float("BENCH_USAGE_QUERY_SECONDS", 300.0)
    run_id = uuid.uuid4().hex[:8]

    # Figure 3 first, on a quiet machine, after this run's reset of the ingestion rows.
    ingest = _ingest_fixtures()
    deleted = delete_usage(metric_ids=[ingest.metric_id], transaction_prefix=TX_PREFIX)
    print(
        f"[{NAME}] reset: deleted {deleted[0]:,} usage records and {deleted[1]:,} dedupe rows "
        "of earlier ingestion runs",
        flush=True,
    )
    dataset = _dataset(rows, load_seconds)
    results = _aggregate_figure(dataset, queries, query_seconds)
    results += _buckets_figure(dataset, queries, query_seconds)

    templates = _templates(ingest)
    flat_events = [event for template in templates for event in template.events]
    _, raw_key = ApiKey.generate(name=f"bench-{run_id}")
    connection.close()  # the parent holds no connection while the server works
    auth = {"Content-Type": "application/json", "Authorization": f"Bearer {raw_key}"}

    def batch_full(n: int):
        body = _fill(templates[n % TEMPLATES].http, f"{TX_PREFIX}{run_id}-bf-{n}", n)
        return "POST", BATCH_PATH, body, auth

    def batch_copy(n: int) -> tuple[bytes, bytes]:
        template = templates[n % TEMPLATES]
        tid = f"{TX_PREFIX}{run_id}-bc-{n}"
        now = datetime.now(UTC).isoformat()
        return _fill(template.transactions, tid, n, now), _fill(template.records, tid, n, now)

    def single(tag: str, n: int) -> bytes:
        external_id, second, tokens = flat_events[n % len(flat_events)]
        return json.dumps(
            {
                "transaction_id": f"{TX_PREFIX}{run_id}-{tag}-{n}",
                "subscription": external_id,
                "metric": ingest.metric_code,
                "timestamp": f"{second}.{n % 1_000_000:06d}+00:00",
                "properties": {"tokens": tokens},
            }
        ).encode()

    def single_full(n: int):
        return "POST", SINGLE_PATH, single("sf", n), auth

    def single_bare(n: int):
        return "POST", BARE_PATH, single("sb", n), {"Content-Type": "application/json"}

    segment_seconds = seconds / 2
    segment_max = -(-max_requests // 2) if max_requests else None
    batch = {"batch-full": LoadStats("batch-full"), "batch-copy": LoadStats("batch-copy")}
    singles = {"single-full": LoadStats("single-full"), "single-bare": LoadStats("single-bare")}
    answered = dict.fromkeys(["bf", "bc", "sf", "sb"], 0)  # successes, warm-up included
    single_factories = {"single-full": single_full, "single-bare": single_bare}
    tags = {"batch-full": "bf", "batch-copy": "bc", "single-full": "sf", "single-bare": "sb"}

    def batch_segment(target: str, seconds_: float, max_batches: int | None) -> LoadStats:
        if target == "batch-copy":
            return _copy_load(
                target=target, batch=batch_copy, threads=batch_threads, seconds=seconds_,
                max_batches=max_batches,
            )  # fmt: skip
        return generate_load(
            target=target, port=server.port, factory=batch_full, expected_status=200,
            threads=batch_threads, seconds=seconds_, max_requests=max_batches,
            request_timeout=30.0,
        )  # fmt: skip

    server = GunicornServer(
        workers=env_int("BENCH_WORKERS", 2), threads=env_int("BENCH_SERVER_THREADS", 1)
    )
    try:
        with server:
            print(
                f"[{NAME}] {server.description}; batches of {BATCH_SIZE} events "
                f"({len(templates[0].http):,} bytes as JSON), {batch_threads} clients; "
                f"single events with {threads} clients; {seconds:g}s per target "
                "(full, baseline, baseline, full)",
                flush=True,
            )
            for target in batch:
                if batch_warmup:
                    warm = batch_segment(target, max(10.0, seconds), batch_warmup)
                    answered[tags[target]] += warm.ok * BATCH_SIZE
                    if warm.errors:
                        print(f"[{NAME}] warm-up {target}: {warm.errors} failures {warm.failures}")
                        batch[target].samples.extend(warm.samples[:2])
            order = ["batch-full", "batch-copy", "batch-copy", "batch-full"]
            for index, target in enumerate(order, start=1):
                stats = batch_segment(target, segment_seconds, segment_max)
                print(_segment_line(index, stats, "events", BATCH_SIZE), flush=True)
                answered[tags[target]] += stats.ok * BATCH_SIZE
                batch[target].merge(stats)

            for target, factory in single_factories.items():
                if warmup:
                    warm = generate_load(
                        target=target, port=server.port, factory=factory, expected_status=201,
                        threads=threads, seconds=max(5.0, seconds), max_requests=warmup,
                    )  # fmt: skip
                    answered[tags[target]] += warm.ok
                    if warm.errors:
                        print(f"[{NAME}] warm-up {target}: {warm.errors} failures {warm.failures}")
                        singles[target].samples.extend(warm.samples[:2])
            order = ["single-full", "single-bare", "single-bare", "single-full"]
            for index, target in enumerate(order, start=1):
                stats = generate_load(
                    target=target, port=server.port, factory=single_factories[target],
                    expected_status=201, threads=threads, seconds=segment_seconds,
                    max_requests=segment_max,
                )  # fmt: skip
                print(_segment_line(index, stats, "req"), flush=True)
                answered[tags[target]] += stats.ok
                singles[target].merge(stats)
            if any(stats.errors for stats in [*batch.values(), *singles.values()]):
                print(f"\n[{NAME}] server log (tail):\n{server.log_tail()}\n", flush=True)

        # Every success must have stored its rows (a batch: all 1,000), and nothing else.
        stored = _stored(ingest, run_id)
        print(
            f"[{NAME}] events answered (warm-up included) / records / dedupe rows stored: "
            + ", ".join(
                f"{target} {answered[tag]:,}/{stored.get(tag, (0, 0))[0]:,}/"
                f"{stored.get(tag, (0, 0))[1]:,}"
                for target, tag in tags.items()
            ),
            flush=True,
        )
        for target, tag in tags.items():
            stats = batch.get(target) or singles[target]
            for found, kind in zip(
                stored.get(tag, (0, 0)), ("records", "dedupe rows"), strict=True
            ):
                if found != answered[tag]:
                    stats.failures[f"{kind} stored != events answered"] = abs(found - answered[tag])
                    stats.samples.append(f"{kind}: {found} stored, {answered[tag]} answered")
    finally:
        server.cleanup()
        connection.close()

    for stats in [*batch.values(), *singles.values()]:
        if stats.errors:
            print(
                f"\n!!! [{NAME}] {stats.target}: {stats.errors} failures of {stats.requests}: "
                f"{stats.failures}",
                flush=True,
            )
            for sample in stats.samples:
                print(f"!!!   {sample}", flush=True)
    for result in results:
        if result.errors:
            print(f"\n!!! [{NAME}] {result.target}: {result.errors} failed queries", flush=True)

    full, copy = batch["batch-full"], batch["batch-copy"]
    sfull, sbare = singles["single-full"], singles["single-bare"]
    batch_ratio = full.rps / copy.rps if copy.rps else float("nan")
    print(
        f"\n[{NAME}] 1. batch ingestion ({BATCH_SIZE} events per batch, {batch_threads} clients):"
        f"\n[{NAME}]      full stack  {full.rps * BATCH_SIZE:10,.0f} events/s  "
        f"(p50 {full.percentile_ms(50):.0f} ms, p99 {full.percentile_ms(99):.0f} ms per batch)"
        f"\n[{NAME}]      raw COPY    {copy.rps * BATCH_SIZE:10,.0f} events/s  "
        f"(p50 {copy.percentile_ms(50):.0f} ms, p99 {copy.percentile_ms(99):.0f} ms per batch)"
        f"\n[{NAME}]      ratio {batch_ratio:.3f} (target >= 0.333: "
        f"{'met' if batch_ratio >= 1 / 3 else 'MISSED'})"
        f"\n[{NAME}] 2. single events ({threads} clients):"
        f"\n[{NAME}]      full stack  {sfull.rps:8.1f} req/s  p50 {sfull.percentile_ms(50):.2f} ms"
        f"  p99 {sfull.percentile_ms(99):.2f} ms"
        f"\n[{NAME}]      bare view   {sbare.rps:8.1f} req/s  p50 {sbare.percentile_ms(50):.2f} ms"
        f"  p99 {sbare.percentile_ms(99):.2f} ms"
        f"\n[{NAME}]      ratio {sfull.rps / sbare.rps if sbare.rps else float('nan'):.3f}",
        flush=True,
    )
    if dataset.loaded_now:
        print(
            f"[{NAME}] (the aggregate dataset was loaded in this run, "
            f"in {dataset.load_seconds:.0f}s)"
        )
    return [
        _result(full, baseline=copy, events_per_request=BATCH_SIZE),
        _result(copy, events_per_request=BATCH_SIZE),
        _result(sfull, baseline=sbare),
        _result(sbare),
        *results,
    ]
