"""The billing run: every closed period of 10,000 subscriptions invoiced and finalized by
billing.billing_run.billing_run(), against the reads it cannot do without.

Measured (each figure in the same run, on the same data):

  billing-run  billing_run() with the default page (BILLING_RUN_BATCH) over the 10,000
               closed October periods: for each one it reads the period, its
               subscription, customer, phases, plan, charges and metrics, aggregates its
               usage, rates it, writes the invoice and its 4 lines, marks the period
               billed, then locks the invoice and the issuer's sequence row and numbers
               it (Stripe disabled: no payment is queued, the invoice says why). The
               pghistory audit and immutability triggers run as in production. In
               invoices/s, and the latency of each page (p50/p99: billing_run's own
               per-page function, billing.billing_run._page, timed by a wrapper).
  billing-run-Nw  the same run by N worker processes at once (BENCH_BILLING_WORKERS,
               default 1 and 2), forked after the set-up, each calling billing_run() as a
               Celery worker's task does: pages are claimed with SKIP LOCKED. Invoices/s of
               all of them together, from the first start to the last end; the checks
               below run after each.
  usage-units  THE BASELINE: for the same 10,000 periods, in the same order, only
               billing.usage_selectors.usage_units() with the metrics given (as
               period_input gives them): one aggregate query per period, the one read no
               per-period billing run can skip. It is measured twice, before and after
               the billing run, and the two passes are pooled. The ratio billing-run /
               usage-units (invoices/s over periods/s) says what share of the run's time
               is that irreducible read: 1.0 would be a run that costs nothing else; 0.1 a
               run spending 90% of its time on everything around it (the other reads, the
               writes, commits, numbering, triggers, Python).

Printed alongside, not in the ratio: one set-based GROUP BY of all the periods' usage at
once (the floor of a run that read its usage in bulk instead of per period); the mean
latency per page over the first and the last tenth of the run (a cost that grew with the
invoice table would show there); the queries per invoice of billing_run(), counted with
CaptureQueriesContext and grouped by statement shape, on the last
BENCH_BILLING_QUERY_SAMPLE periods re-billed after the timed run (their invoices voided,
which a finalized invoice allows, and the periods queued again: the tables are at full
size); and the memory of the run.

Memory. The timed run reports the growth of the process's RSS and its peak RSS (VmHWM,
reset through /proc/self/clear_refs just before the run), and the getrusage maxrss delta
(which moves only if the run exceeds the process's earlier peak, e.g. the set-up's). Then,
unless BENCH_BILLING_MEMORY=0, the run is repeated under tracemalloc, from an empty invoice
table each time (tracemalloc slows Python about 2.5x, so these runs are not the timed
figure): pages of 100 and of 1,000 over BENCH_BILLING_MEMORY_PERIODS periods (a fifth of
the subscriptions unless set; the limit is checked between pages), and pages of 100 over a
fifth of that. The billing run holds one page at a time (its periods, subscriptions,
phases, usage, invoices and lines: about 19 KB per period), so the peak of Python
allocations follows the page size (10x the page, about 9x the peak) and not the number of
periods (5x the periods must not give ~5x the peak). Part of the peak is garbage: reference
cycles (querysets, model instances) that wait for the GC's next full collection, which a
process with a large heap runs rarely; so each traced run also reports what is still allocated after
gc.collect(), which is what a leak would show in. BENCH_BILLING_MEMORY_PERIODS=10000
measures at full size (about 22,000 traced invoices: slow).

Checks after the timed run: exactly one invoice per period (10,000), all finalized,
10,000 distinct numbers, numbered gaplessly 1..10,000, 4 lines each, no period left
unbilled, no payment queued, and the units on the invoice lines equal to the baseline's
aggregates. A failed check counts as an error of the billing-run target (so the run exits
1 and the table marks the ratio invalid).

Data (set-up, untimed, redone every run). The reset truncates customers_customer (and with
it subscriptions, their phases and periods, invoices and their lines: the billing run bills
every unbilled period of the database, so the queue must hold only ours), the invoice
sequence and the audit events of customers, subscriptions and invoices; and deletes this
benchmark's usage rows (by its metrics, which have fixed ids). Then: three metrics
(bench_billing_calls count -> standard, bench_billing_tokens sum of `tokens` ->
graduated, bench_billing_seats unique_count of `user` -> package) on one monthly plan of
29 EUR in arrears; BENCH_BILLING_SUBSCRIPTIONS customers (tax rate 20%) each with one
subscription started on the first day of the last whole month (calendar; OCT_1, named for
October 2026 when this was written), and that month closed as
subscriptions.services.subscription_advance(now=the 15th of this month) closes it. The first
subscription is made with the services (customer_create, subscription_create,
subscription_advance); the others are bulk-created (customers, subscriptions, their open
phase and their closed period), and the rows of the first are compared with the second's
field by field before anything is measured. Usage: BENCH_BILLING_EVENTS events per
subscription and metric in that month, loaded with COPY into billing_usagerecord (the
month's partition made first with billing_usage_partition), then VACUUM ANALYZE. No dedupe
rows (billing_usagetransaction) are written: nothing here reads them.

Between the measured runs the invoices are truncated (row triggers forbid deleting a
finalized invoice; TRUNCATE fires none) and every period is marked unbilled again.

Environment: BENCH_BILLING_SUBSCRIPTIONS (10000), BENCH_BILLING_EVENTS (5 per subscription
and metric), BENCH_BILLING_MEMORY (1; 0 skips the tracemalloc runs),
BENCH_BILLING_MEMORY_PERIODS (a fifth of the subscriptions), BENCH_BILLING_QUERY_SAMPLE (100
periods).
"""

import gc
import random
import re
import resource
import time
import tracemalloc
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench import Result
from bench._harness import LoadStats, delete_usage, env_int, env_list, truncate_tables
from bench.usage import COPY_RECORDS

NAME = "billing"
PREFIX = "bench-billing-"
ID_NAMESPACE = uuid.UUID("b7e1c2d4-6a3f-4e59-9c1d-2f8a7b6e5d40")
# The last whole month before today (the services refuse a start two periods back).
_TODAY = datetime.now(UTC)
NOV_1 = datetime(_TODAY.year, _TODAY.month, 1, tzinfo=UTC)
OCT_1 = datetime(NOV_1.year - (NOV_1.month == 1), (NOV_1.month - 2) % 12 + 1, 1, tzinfo=UTC)
ADVANCE_NOW = NOV_1 + timedelta(days=14)
PARTITION = f"billing_usagerecord_y{OCT_1.year}m{OCT_1.month:02d}"
PLAN_CODE = "bench-billing-plan"
PLAN_AMOUNT_CENTS = 2900
TAX_RATE = Decimal("20.00")
LINES_PER_INVOICE = 4  # the fixed fee and one line per charge
BULK_BATCH = 2000
COPY_CHUNK = 1 << 20  # bytes per write of the COPY


def _range(from_value: int, to_value: int | None, per_unit: str, flat: str) -> dict:
    return {
        "from_value": from_value,
        "to_value": to_value,
        "per_unit_amount": per_unit,
        "flat_amount": flat,
    }


# (code, aggregation, field_name, charge_model, properties)
METRICS = (
    ("bench_billing_calls", "count", "", "standard", {"amount": "0.05"}),
    (
        "bench_billing_tokens",
        "sum",
        "tokens",
        "graduated",
        {
            "graduated_ranges": [
                _range(0, 1000, "0.002", "0"),
                _range(1001, 10000, "0.001", "1"),
                _range(10001, None, "0.0005", "2"),
            ]
        },
    ),
    (
        "bench_billing_seats",
        "unique_count",
        "user",
        "package",
        {"amount": "5", "package_size": 2, "free_units": 1},
    ),
)

# Compared between the service-made and the bulk-made rows: every column but these (so a
# column added later is compared too).
NOT_COMPARED = frozenset(
    {"id", "external_id", "customer", "subscription", "created_at", "updated_at", "closed_at"}
)


def _compared(model) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields if f.name not in NOT_COMPARED]


def _external_id(index: int) -> str:
    return f"{PREFIX}{index:06d}"


# --- Set-up ----------------------------------------------------------------------------
def _reset() -> None:
    """Empty what this benchmark fills (bench database only: truncate_tables refuses any
    other), and its usage rows."""
    from django.apps import apps

    from subscriptions.models import BillableMetric

    models = [
        apps.get_model("customers", "Customer"),
        apps.get_model("invoicing", "Invoice"),
        apps.get_model("invoicing", "InvoiceLine"),
        apps.get_model("invoicing", "InvoiceSequence"),
        apps.get_model("subscriptions", "Subscription"),
        apps.get_model("subscriptions", "SubscriptionPhase"),
        apps.get_model("subscriptions", "SubscriptionPeriod"),
        apps.get_model("customers", "CustomerEvent"),
        apps.get_model("subscriptions", "SubscriptionEvent"),
        apps.get_model("invoicing", "InvoiceEvent"),
    ]
    truncate_tables([model._meta.db_table for model in models])
    metric_ids = [str(uuid.uuid5(ID_NAMESPACE, code)) for code, *_ in METRICS]
    metric_ids += [
        str(pk)
        for pk in BillableMetric.objects.filter(code__in=[m[0] for m in METRICS]).values_list(
            "pk", flat=True
        )
    ]
    records, _ = delete_usage(metric_ids=sorted(set(metric_ids)), transaction_prefix=PREFIX)
    print(f"[{NAME}] reset: deleted {records:,} usage records of earlier runs", flush=True)


def _reset_invoices() -> None:
    """Back to the queue of closed, unbilled periods: no invoice, no number used."""
    from django.apps import apps
    from django.db import connection

    from billing.invoicing.models import Invoice, InvoiceLine, InvoiceSequence
    from subscriptions.models import SubscriptionPeriod

    truncate_tables(
        [
            Invoice._meta.db_table,
            InvoiceLine._meta.db_table,
            InvoiceSequence._meta.db_table,
            apps.get_model("invoicing", "InvoiceEvent")._meta.db_table,
        ]
    )
    table = SubscriptionPeriod._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET billed_at = NULL WHERE billed_at IS NOT NULL")
        cursor.execute(f"VACUUM (ANALYZE) {table}, {Invoice._meta.db_table}")


def _catalog():
    """The three metrics (fixed ids) and the plan, as METRICS and PLAN_* say."""
    from subscriptions.catalog import plan_create, plan_update
    from subscriptions.models import BillableMetric, Plan

    metrics = []
    for code, aggregation, field_name, _, _ in METRICS:
        metric = BillableMetric.objects.filter(code=code).first()
        if metric is None:
            metric = BillableMetric.objects.create(
                id=uuid.uuid5(ID_NAMESPACE, code),
                code=code,
                name=code,
                aggregation=aggregation,
                field_name=field_name,
            )
        elif (metric.aggregation, metric.field_name) != (aggregation, field_name):
            raise RuntimeError(f"metric {code} exists as {metric.aggregation}/{metric.field_name}")
        metrics.append(metric)
    charges = [
        {"metric": metric, "charge_model": spec[3], "properties": spec[4]}
        for metric, spec in zip(metrics, METRICS, strict=True)
    ]
    fields = {
        "name": "Bench billing",
        "interval": "monthly",
        "amount_cents": PLAN_AMOUNT_CENTS,
        "currency": "EUR",
        "pay_in_advance": False,
        "trial_days": 0,
    }
    plan = Plan.objects.filter(code=PLAN_CODE).first()
    if plan is None:
        plan = plan_create(code=PLAN_CODE, charges=charges, **fields)
    else:  # nobody is subscribed after the reset: the prices may change
        plan = plan_update(plan=plan, charges=charges, **fields)
    return metrics, plan


def _subscriptions(plan, count: int) -> list[str]:
    """`count` customers and subscriptions with October 2026 closed; their ids in order.
    The first made with the services, the others in bulk, then compared."""
    from customers.models import Customer
    from customers.services import customer_create
    from subscriptions.models import Subscription, SubscriptionPeriod, SubscriptionPhase
    from subscriptions.periods import nominal_period, period_containing
    from subscriptions.services import subscription_advance, subscription_create

    customer = customer_create(
        external_id=_external_id(0), name="Bench customer 0", currency="EUR", tax_rate=TAX_RATE
    )
    first = subscription_create(
        external_id=_external_id(0), customer=customer, plan=plan, start_at=OCT_1
    )
    outcome = subscription_advance(subscription=first, now=ADVANCE_NOW)
    if outcome != "renewed":
        raise RuntimeError(f"subscription_advance answered {outcome!r}, not 'renewed'")

    # What the services wrote, computed the way they compute it.
    closed = period_containing(
        interval=plan.interval, billing_time="calendar", started_at=OCT_1, moment=OCT_1
    )
    nominal = nominal_period(
        interval=plan.interval, billing_time="calendar", started_at=OCT_1, moment=closed[0]
    )
    current = period_containing(
        interval=plan.interval, billing_time="calendar", started_at=OCT_1, moment=closed[1]
    )
    customers, subscriptions, phases, periods = [], [], [], []
    for index in range(1, count):
        customer = Customer(
            external_id=_external_id(index),
            name=f"Bench customer {index}",
            currency="EUR",
            tax_rate=TAX_RATE,
        )
        subscription = Subscription(
            external_id=_external_id(index),
            customer=customer,
            plan=plan,
            status=Subscription.Status.ACTIVE,
            billing_time=Subscription.BillingTime.CALENDAR,
            start_at=OCT_1,
            started_at=OCT_1,
            billing_anchor_at=OCT_1,
            current_period_start=current[0],
            current_period_end=current[1],
            overrides={},
        )
        customers.append(customer)
        subscriptions.append(subscription)
        phases.append(
            SubscriptionPhase(
                subscription=subscription,
                plan=plan,
                overrides={},
                started_at=OCT_1,
                reason="created",
            )
        )
        periods.append(
            SubscriptionPeriod(
                subscription=subscription,
                start=closed[0],
                end=closed[1],
                nominal_start=nominal[0],
                nominal_end=nominal[1],
                reason="renewed",
            )
        )
    for model, rows in (
        (Customer, customers),
        (Subscription, subscriptions),
        (SubscriptionPhase, phases),
        (SubscriptionPeriod, periods),
    ):
        model.objects.bulk_create(rows, batch_size=BULK_BATCH)

    if count > 1:
        second = subscriptions[0].pk
        for model, key in (
            (Subscription, "pk"),
            (SubscriptionPhase, "subscription_id"),
            (SubscriptionPeriod, "subscription_id"),
        ):
            fields = _compared(model)
            made = list(model.objects.filter(**{key: first.pk}).values(*fields))
            bulk = list(model.objects.filter(**{key: second}).values(*fields))
            if made != bulk:
                raise RuntimeError(
                    f"bulk-made {model.__name__} rows differ from the services':\n"
                    f"  services: {made}\n  bulk:     {bulk}"
                )
    return [str(first.pk), *(str(s.pk) for s in subscriptions)]


def _load_usage(subscription_ids: list[str], metrics: list, events: int) -> int:
    """BENCH_BILLING_EVENTS events per subscription and metric in October, by COPY."""
    from django.db import connection

    rng = random.Random(11)
    span = int((NOV_1 - OCT_1).total_seconds()) - 1
    received = NOV_1.isoformat()
    lines = []
    for s, subscription_id in enumerate(subscription_ids):
        for m, (metric, spec) in enumerate(zip(metrics, METRICS, strict=True)):
            aggregation = spec[1]
            for k in range(events):
                moment = OCT_1 + timedelta(seconds=rng.randrange(span))
                value, unique = r"\N", r"\N"
                if aggregation == "sum":
                    tokens = rng.randint(1, 5000)
                    properties, value = f'{{"tokens": {tokens}}}', str(tokens)
                elif aggregation == "unique_count":
                    user = f"user-{rng.randrange(8)}"
                    properties, unique = f'{{"user": "{user}"}}', user
                else:
                    properties = '{"endpoint": "/v1/completions"}'
                lines.append(
                    f"{PREFIX}{s}-{m}-{k}\t{subscription_id}\t{metric.pk}\t"
                    f"{moment.isoformat()}\t{properties}\t{value}\t{unique}\t{received}\t"
                    "disabled\n"
                )
    data = "".join(lines).encode()
    del lines
    with connection.cursor() as cursor:
        cursor.execute("SELECT billing_usage_partition(%s::date)", [OCT_1.date()])
        with cursor.cursor.copy(COPY_RECORDS) as copy:
            for offset in range(0, len(data), COPY_CHUNK):
                copy.write(data[offset : offset + COPY_CHUNK])
        cursor.execute(
            f"SELECT count(*) FROM {PARTITION} WHERE metric_id = ANY(%s::uuid[])",
            [[str(m.pk) for m in metrics]],
        )
        (in_partition,) = cursor.fetchone()
    expected = len(subscription_ids) * len(metrics) * events
    if in_partition != expected:
        raise RuntimeError(f"{in_partition:,} of {expected:,} events in the October partition")
    return expected


def _vacuum() -> None:
    from django.db import connection

    tables = [
        PARTITION,
        "customers_customer",
        "subscriptions_subscription",
        "subscriptions_subscriptionphase",
        "subscriptions_subscriptionperiod",
        "billing_invoice",
        "billing_invoiceline",
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")


# --- Measures --------------------------------------------------------------------------
def _rss_kb() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in kB (0, 0 where /proc is not there)."""
    try:
        with open("/proc/self/status") as status:
            text = status.read()
    except OSError:
        return 0, 0
    rss = re.search(r"VmRSS:\s+(\d+)", text)
    hwm = re.search(r"VmHWM:\s+(\d+)", text)
    return (int(rss.group(1)) if rss else 0, int(hwm.group(1)) if hwm else 0)


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


@dataclass
class Run:
    batch_size: int
    limit: int | None
    report: object
    seconds: float
    latencies_ms: list[float]
    rss_growth_kb: int = 0
    peak_rss_growth_kb: int | None = None  # None: VmHWM could not be reset
    maxrss_delta_kb: int = 0
    traced_peak_bytes: int | None = None
    traced_retained_bytes: int | None = None  # still allocated after gc.collect()

    @property
    def invoices_per_second(self) -> float:
        return self.report.finalized / self.seconds if self.seconds else 0.0


def _billing_run(batch_size: int, limit: int | None = None, *, traced: bool = False) -> Run:
    """billing_run() from an empty invoice table, with each page timed."""
    import billing.invoicing.billing_run as module

    latencies: list[float] = []
    bill = module._page

    def timed_bill(*args, **kwargs):
        started = time.perf_counter()
        try:
            return bill(*args, **kwargs)
        finally:
            latencies.append((time.perf_counter() - started) * 1000)

    gc.collect()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_before, _ = _rss_kb()
    hwm_reset = _reset_peak_rss()
    if traced:
        tracemalloc.start()
        tracemalloc.reset_peak()
        traced_before, _ = tracemalloc.get_traced_memory()
    module._page = timed_bill
    try:
        started = time.perf_counter()
        report = module.billing_run(batch_size=batch_size, limit=limit)
        seconds = time.perf_counter() - started
    finally:
        module._page = bill
        if traced:
            _, traced_peak = tracemalloc.get_traced_memory()
            gc.collect()  # what is garbage (reference cycles the GC has not reached yet)
            traced_retained, _ = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    rss_after, hwm = _rss_kb()
    return Run(
        batch_size=batch_size,
        limit=limit,
        report=report,
        seconds=seconds,
        latencies_ms=latencies,
        rss_growth_kb=rss_after - rss_before,
        peak_rss_growth_kb=hwm - rss_before if hwm_reset and hwm else None,
        maxrss_delta_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss_before,
        traced_peak_bytes=traced_peak - traced_before if traced else None,
        traced_retained_bytes=traced_retained - traced_before if traced else None,
    )


def _worker(batch_size: int, queue) -> None:
    """A forked worker process (the parent closed its connections first, so this one
    opens its own): one billing_run()."""
    from django.db import connections

    import billing.invoicing.billing_run as module

    report = module.billing_run(batch_size=batch_size)
    connections.close_all()
    queue.put((report.finalized, report.failed, time.perf_counter()))


def _parallel_run(batch_size: int, workers: int) -> tuple[float, int, int]:
    """billing_run() in `workers` forked processes at once: (seconds, finalized, failed)."""
    import multiprocessing

    from django.db import connections

    connections.close_all()  # no socket is shared with the children
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    started = time.perf_counter()
    processes = [context.Process(target=_worker, args=(batch_size, queue)) for _ in range(workers)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=1800) for _ in processes]
    for process in processes:
        process.join()
    seconds = max(ended for _, _, ended in results) - started
    return seconds, sum(r[0] for r in results), sum(r[1] for r in results)


def _periods() -> list[tuple[str, datetime, datetime]]:
    from subscriptions.models import SubscriptionPeriod

    return list(
        SubscriptionPeriod.objects.filter(billed_at__isnull=True)
        .order_by("pk")
        .values_list("subscription_id", "start", "end")
    )


def _baseline(periods, metrics: dict) -> tuple[LoadStats, dict]:
    """usage_units() of every period, in billing order: (timings, total units per metric)."""
    from billing.usage.selectors import usage_units
    from subscriptions.models import Subscription

    stats = LoadStats("usage-units")
    totals: dict = {}
    subscriptions = [Subscription(pk=subscription_id) for subscription_id, _, _ in periods]
    started = time.perf_counter()
    for subscription, (_, start, end) in zip(subscriptions, periods, strict=True):
        begun = time.perf_counter()
        units = usage_units(subscription=subscription, start=start, end=end, metrics=metrics)
        stats.latencies_ms.append((time.perf_counter() - begun) * 1000)
        for metric_id, value in units.items():
            totals[metric_id] = totals.get(metric_id, Decimal(0)) + value
    stats.seconds = time.perf_counter() - started
    stats.ok = len(periods)
    return stats, totals


SET_BASED_SQL = """
    SELECT p.id, u.metric_id, count(*), coalesce(sum(u.value), 0),
           count(DISTINCT u.unique_value)
    FROM subscriptions_subscriptionperiod p
    JOIN billing_usagerecord u
      ON u.subscription_id = p.subscription_id
     AND u."timestamp" >= p.start AND u."timestamp" < p."end"
    WHERE p.billed_at IS NULL
    GROUP BY p.id, u.metric_id
"""


def _set_based() -> tuple[float, int]:
    """One GROUP BY of every unbilled period's usage: (seconds, rows)."""
    from django.db import connection

    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(SET_BASED_SQL)
        rows = len(cursor.fetchall())
    return time.perf_counter() - started, rows


_SAVEPOINT = re.compile(r'SAVEPOINT "[^"]*"')
_LITERALS = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")


def _shape(sql: str) -> str:
    return " ".join(_LITERALS.sub("?", _SAVEPOINT.sub("SAVEPOINT ?", sql)).split())


@dataclass
class QuerySample:
    queries: int
    invoices: int
    seconds: float
    sql_seconds: float  # inside cursor.execute: the server's work and the round trips
    shapes: list[tuple[float, float, str]]  # (per invoice, mean ms, statement shape)


def _query_sample(sample: int) -> QuerySample:
    """billing_run() of the last `sample` periods, re-billed at full table size (their
    invoices voided, which a finalized invoice allows, and the periods queued again), with
    every query captured and grouped by shape."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.invoicing.billing_run import billing_run

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, subscription_id, start FROM subscriptions_subscriptionperiod "
            "ORDER BY id DESC LIMIT %s",
            [sample],
        )
        last = cursor.fetchall()
        cursor.execute(
            "UPDATE billing_invoice SET status = 'voided', voided_at = now() "
            "WHERE status = 'finalized' AND (subscription_id, period_start) IN "
            "(SELECT * FROM unnest(%s::uuid[], %s::timestamptz[]))",
            [[str(row[1]) for row in last], [row[2] for row in last]],
        )
        voided = cursor.rowcount
        cursor.execute(
            "UPDATE subscriptions_subscriptionperiod SET billed_at = NULL WHERE id = ANY(%s)",
            [[row[0] for row in last]],
        )
    if voided != len(last):
        raise RuntimeError(f"voided {voided} invoices of the last {len(last)} periods")
    # CaptureQueriesContext counts every statement (BEGIN, COMMIT and savepoints too) but
    # keeps times to the millisecond; an execute wrapper times the others precisely.
    timed: list[tuple[str, float]] = []

    def timer(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timed.append((sql, time.perf_counter() - started))

    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(timer):
        started = time.perf_counter()
        report = billing_run(batch_size=sample, limit=sample)
        seconds = time.perf_counter() - started

    # The wrapper sees the same statements in the same order but BEGIN, COMMIT and
    # ROLLBACK (the connection's, not cursor.execute; savepoints go through it).
    def is_control(sql: str) -> bool:
        return sql.strip() in ("BEGIN", "COMMIT", "ROLLBACK")

    statements = captured.captured_queries
    others = [query for query in statements if not is_control(query["sql"])]
    precise = [took for sql, took in timed if not is_control(sql)]
    if len(precise) != len(others):
        precise = [float(query["time"]) for query in others]
    exact = iter(precise)
    counts: Counter = Counter()
    times: Counter = Counter()
    for query in statements:
        shape = _shape(query["sql"])
        counts[shape] += 1
        times[shape] += float(query["time"]) if is_control(query["sql"]) else next(exact)
    invoices = report.finalized or 1
    return QuerySample(
        queries=len(statements),
        invoices=report.finalized,
        seconds=seconds,
        sql_seconds=sum(times.values()),
        shapes=[
            (count / invoices, 1000 * times[shape] / count, shape)
            for shape, count in counts.most_common()
        ],
    )


def _check(expected: int, baseline_units: dict) -> list[str]:
    """What must hold after a full run; each failure described."""
    from django.db import connection

    from billing.sync.models import OutboxMessage

    problems = []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*),
                   count(*) FILTER (WHERE status = 'finalized'),
                   count(DISTINCT number),
                   count(DISTINCT (subscription_id, period_start, period_end)),
                   min(substring(number from '([0-9]+)$')::bigint),
                   max(substring(number from '([0-9]+)$')::bigint),
                   count(*) FILTER (WHERE payment_status = 'pending'
                                    AND next_payment_attempt_at IS NULL)
            FROM billing_invoice
            """
        )
        invoices, finalized, numbers, periods, low, high, unqueued = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM billing_invoiceline")
        (lines,) = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM subscriptions_subscriptionperiod WHERE billed_at IS NULL"
        )
        (unbilled,) = cursor.fetchone()
        cursor.execute(
            "SELECT metric_id, sum(units) FROM billing_invoiceline "
            "WHERE metric_id IS NOT NULL GROUP BY metric_id"
        )
        line_units = dict(cursor.fetchall())
    collect = OutboxMessage.objects.filter(object_type="invoicing.invoice").count()
    print(
        f"[{NAME}] check: {invoices:,} invoices (expected {expected:,}), {finalized:,} "
        f"finalized, {numbers:,} distinct numbers ({low}..{high}), {periods:,} distinct "
        f"periods, {lines:,} lines, {unbilled:,} periods unbilled, {collect} payments "
        f"queued ({unqueued:,} pending with no attempt planned: Stripe disabled)",
        flush=True,
    )
    if invoices != expected:
        problems.append(f"{invoices} invoices, expected {expected}")
    if finalized != expected:
        problems.append(f"{finalized} finalized invoices, expected {expected}")
    if numbers != expected:
        problems.append(f"{numbers} distinct numbers, expected {expected}")
    if (low, high) != (1, expected):
        problems.append(f"numbers run {low}..{high}, expected 1..{expected} (gapless)")
    if periods != expected:
        problems.append(f"{periods} distinct periods invoiced, expected {expected}")
    if lines != expected * LINES_PER_INVOICE:
        problems.append(f"{lines} lines, expected {expected * LINES_PER_INVOICE}")
    if unbilled:
        problems.append(f"{unbilled} periods left unbilled")
    if collect:
        problems.append(f"{collect} payments queued with Stripe disabled")
    if line_units != baseline_units:
        problems.append(f"units on the lines {line_units} != the aggregates {baseline_units}")
    else:
        print(
            f"[{NAME}] check: units on the invoice lines equal the baseline's aggregates "
            f"({', '.join(f'{v:,.0f}' for v in line_units.values())})",
            flush=True,
        )
    return problems


# --- The benchmark ---------------------------------------------------------------------
def _mb(kb: int | None) -> str:
    return "n/a" if kb is None else f"{kb / 1024:+.1f} MB"


def run() -> list[Result]:
    from django.conf import settings
    from django.db import connection
    from django.test.utils import override_settings

    from billing.providers import provider_enabled
    from subscriptions.models import BillableMetric

    count = env_int("BENCH_BILLING_SUBSCRIPTIONS", 10_000)
    events = env_int("BENCH_BILLING_EVENTS", 5)
    memory = env_int("BENCH_BILLING_MEMORY", 1)
    sample = min(env_int("BENCH_BILLING_QUERY_SAMPLE", 100), count)
    memory_periods = min(count, env_int("BENCH_BILLING_MEMORY_PERIODS", max(1, count // 5)))
    few = max(1, memory_periods // 5)

    with override_settings(
        STRIPE_SECRET_KEY="", LAGO_API_URL="", LAGO_API_KEY="", BILLING_ENGINE="local"
    ):
        if provider_enabled("stripe") or provider_enabled("lago"):
            raise RuntimeError("providers must be disabled: the run would queue payments")
        batch = settings.BILLING_RUN_BATCH

        # --- Set-up (untimed) ---
        began = time.perf_counter()
        _reset()
        metrics, plan = _catalog()
        made = time.perf_counter()
        subscription_ids = _subscriptions(plan, count)
        made = time.perf_counter() - made
        loaded = time.perf_counter()
        rows = _load_usage(subscription_ids, metrics, events)
        loaded = time.perf_counter() - loaded
        del subscription_ids
        vacuumed = time.perf_counter()
        _vacuum()
        vacuumed = time.perf_counter() - vacuumed
        setup = time.perf_counter() - began
        print(
            f"[{NAME}] set-up {setup:.1f}s: {count:,} customers and subscriptions with "
            f"October closed in {made:.1f}s (the first with the services, the others in bulk, "
            f"rows equal), {rows:,} usage events loaded by COPY in {loaded:.1f}s, "
            f"VACUUM ANALYZE {vacuumed:.1f}s",
            flush=True,
        )

        # --- Measured ---
        periods = _periods()
        if len(periods) != count:
            raise RuntimeError(f"{len(periods)} closed periods, expected {count}")
        metric_map = {m.pk: m for m in BillableMetric.objects.all()}
        before, units = _baseline(periods, metric_map)
        set_seconds, set_rows = _set_based()

        timed = _billing_run(batch)
        problems = [f"billing run: {error}" for error in timed.report.errors[:5]]
        problems += _check(count, units)

        after, units_after = _baseline(periods, metric_map)
        if units_after != units:
            problems.append("the baseline's aggregates changed between its passes")
        baseline = LoadStats("usage-units")
        for part in (before, after):
            baseline.merge(part)

        parallel: list[tuple[int, float, int, int]] = []
        for workers in env_list("BENCH_BILLING_WORKERS", [1, 2]):
            _reset_invoices()
            seconds, finalized, failed = _parallel_run(batch, workers)
            parallel.append((workers, seconds, finalized, failed))
            problems += [f"{workers} workers: {p}" for p in _check(count, units)]

        queries = _query_sample(sample)
        if queries.invoices != sample:
            problems.append(f"query sample: {queries.invoices} invoices of {sample} periods")

        memory_runs: list[Run] = []
        if memory:
            for size, limit in ((100, memory_periods), (1000, memory_periods), (100, few)):
                _reset_invoices()
                result = _billing_run(size, limit, traced=True)
                # The limit is checked between pages: whole pages are billed.
                expected = min(count, -(-limit // size) * size)
                if result.report.failed or result.report.finalized != expected:
                    problems.append(
                        f"traced run (page {size}, limit {limit}): {result.report.finalized} "
                        f"finalized of {expected}, {result.report.failed} failed"
                    )
                memory_runs.append(result)
        connection.close()

    # --- Report ---
    report = timed.report
    run_stats = LoadStats("billing-run", latencies_ms=timed.latencies_ms)
    ratio = timed.invoices_per_second / baseline.rps if baseline.rps else float("nan")
    tenth = max(1, len(timed.latencies_ms) // 10)
    first_ms = sum(timed.latencies_ms[:tenth]) / tenth
    last_ms = sum(timed.latencies_ms[-tenth:]) / tenth
    print(
        f"\n[{NAME}] billing run over {count:,} closed periods ({events} events per "
        f"subscription and metric, {rows:,} in all), page {batch}:"
        f"\n[{NAME}]      billing_run()  {timed.invoices_per_second:9,.1f} invoices/s  "
        f"{timed.seconds:7.1f}s in all   per page p50 {run_stats.percentile_ms(50):.2f} ms  "
        f"p99 {run_stats.percentile_ms(99):.2f} ms"
        f"\n[{NAME}]                     periods {report.periods:,}, generated "
        f"{report.generated:,}, finalized {report.finalized:,}, failed {report.failed}; "
        f"mean per page {first_ms:.2f} ms over the first {tenth:,}, {last_ms:.2f} ms over "
        f"the last {tenth:,}"
        f"\n[{NAME}]      baseline usage_units() alone {baseline.rps:9,.1f} periods/s  "
        f"({before.seconds:.1f}s before the run, {after.seconds:.1f}s after; p50 "
        f"{baseline.percentile_ms(50):.2f} ms  p99 {baseline.percentile_ms(99):.2f} ms)"
        f"\n[{NAME}]      ratio billing-run/usage-units = {ratio:.3f} (the aggregate read is "
        f"{100 * ratio:.1f}% of the run's time per invoice)"
        f"\n[{NAME}]      for reference, one GROUP BY of all {count:,} periods' usage: "
        f"{set_seconds:.2f}s ({set_rows:,} rows, {count / set_seconds:,.0f} periods/s)"
        f"\n[{NAME}]      memory of the timed run: RSS {_mb(timed.rss_growth_kb)} after, "
        f"peak RSS {_mb(timed.peak_rss_growth_kb)} over the start (VmHWM), getrusage "
        f"maxrss delta {_mb(timed.maxrss_delta_kb)} (moves only past the set-up's peak)",
        flush=True,
    )
    per_invoice = queries.queries / (queries.invoices or 1)
    print(
        f"[{NAME}] queries of billing_run() on the last {queries.invoices} periods, re-billed "
        f"at full table size (one page): {queries.queries} in all, {per_invoice:.1f} per "
        f"invoice; {1000 * queries.seconds / (queries.invoices or 1):.2f} ms per invoice "
        f"while captured, {1000 * queries.sql_seconds / (queries.invoices or 1):.2f} ms of "
        "it in cursor.execute (the rest is Python); per invoice, mean ms, statement:",
        flush=True,
    )
    for count_, mean_ms, shape in queries.shapes:
        print(f"[{NAME}]   {count_:5.2f} {mean_ms:6.2f}  {shape[:140]}", flush=True)
    if memory_runs:
        print(
            f"[{NAME}] memory under tracemalloc (peak of Python allocations during the run, "
            "over what was allocated at its start; peak RSS over the start, from VmHWM):",
            flush=True,
        )
        for item in memory_runs:
            print(
                f"[{NAME}]   page {item.batch_size:5,}, {item.report.periods:6,} periods: "
                f"traced peak {item.traced_peak_bytes / 1e6:5.2f} MB, retained after "
                f"gc.collect() {item.traced_retained_bytes / 1e6:5.2f} MB   peak RSS "
                f"{_mb(item.peak_rss_growth_kb):>9}   ({item.invoices_per_second:,.1f} "
                f"invoices/s traced, {item.seconds:.0f}s)",
                flush=True,
            )
        small, large, fewer = memory_runs
        print(
            f"[{NAME}]   page 1,000 vs 100 over {large.report.periods:,} periods: traced peak "
            f"x{large.traced_peak_bytes / small.traced_peak_bytes:.2f}; at page 100, "
            f"{small.report.periods:,} vs {fewer.report.periods:,} periods (x"
            f"{small.report.periods / (fewer.report.periods or 1):.0f}): traced peak "
            f"x{small.traced_peak_bytes / fewer.traced_peak_bytes:.2f}",
            flush=True,
        )
    parallel_results = []
    for workers, seconds, finalized, failed in parallel:
        rate = finalized / seconds if seconds else 0.0
        print(
            f"[{NAME}] {workers} worker process(es) at once: {finalized:,} invoices in "
            f"{seconds:.1f}s, {rate:,.1f} invoices/s ({rate / baseline.rps:.3f}x the "
            f"baseline), {failed} failed",
            flush=True,
        )
        parallel_results.append(
            Result(
                benchmark=NAME,
                target=f"billing-run-{workers}w",
                requests=finalized,
                errors=failed,
                seconds=seconds,
                rps=rate,
                p50_ms=0.0,
                p99_ms=0.0,
                baseline="usage-units",
                ratio=rate / baseline.rps if baseline.rps else float("nan"),
            )
        )
    for problem in problems:
        print(f"!!! [{NAME}] {problem}", flush=True)

    extra = {
        "setup_seconds": setup,
        "queries_per_invoice": per_invoice,
        "set_based_seconds": set_seconds,
        "first_tenth_mean_ms": first_ms,
        "last_tenth_mean_ms": last_ms,
        "rss_growth_kb": float(timed.rss_growth_kb),
        "maxrss_delta_kb": float(timed.maxrss_delta_kb),
    }
    if timed.peak_rss_growth_kb is not None:
        extra["peak_rss_growth_kb"] = float(timed.peak_rss_growth_kb)
    for item in memory_runs:
        key = f"traced_peak_bytes_page{item.batch_size}_periods{item.report.periods}"
        extra[key] = float(item.traced_peak_bytes)
        extra[key.replace("peak", "retained")] = float(item.traced_retained_bytes)
    return [
        Result(
            benchmark=NAME,
            target="billing-run",
            requests=report.periods,
            errors=report.failed + len(problems),
            seconds=timed.seconds,
            rps=timed.invoices_per_second,
            p50_ms=run_stats.percentile_ms(50),
            p99_ms=run_stats.percentile_ms(99),
            baseline="usage-units",
            ratio=ratio,
            extra=extra,
        ),
        *parallel_results,
        Result(
            benchmark=NAME,
            target="usage-units",
            requests=baseline.ok,
            errors=0,
            seconds=baseline.seconds,
            rps=baseline.rps,
            p50_ms=baseline.percentile_ms(50),
            p99_ms=baseline.percentile_ms(99),
        ),
    ]
