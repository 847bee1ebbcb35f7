"""The back office's dashboard at 100,000 invoices, against the one read it cannot beat.

Measured (each figure in the same run, on the same data):

  dashboard    the admin's first page (backoffice.dashboard.dashboard) rendered for a
               superuser through a RequestFactory request, template and all: MRR, revenue
               per month, ageing, overdue by customer, payments, operations, usage per
               day, top customers. In renders/s, p50/p99 per render; the queries of one
               render are counted (CaptureQueriesContext) and printed.
  invoice-sum  THE BASELINE: one `SUM(total_amount_cents)` over every invoice of the
               currency, the floor of any figure that reads the whole table. The ratio
               dashboard / invoice-sum says how many such scans the page costs.

Data (set-up, untimed, redone every run): BENCH_DASHBOARD_INVOICES invoices (100,000) of
1,000 USD customers issued over the last 12 months, due 30 days after issue: 70 % paid by
card (one succeeded attempt each), 5 % voided, the rest owed (a failed attempt on a third
of them), created with bulk_create (the audit triggers run as in production).
"""

import random
import statistics
import time
from datetime import timedelta

from bench import Result
from bench._harness import env_int, truncate_tables

NAME = "dashboard"


def _seed(invoices: int) -> None:
    from django.utils import timezone

    from billing.invoicing.models import Invoice
    from billing.payments.models import PaymentAttempt
    from customers.models import Customer

    truncate_tables(["customers_customer", "billing_invoicesequence"])
    rng = random.Random(15)
    customers = Customer.objects.bulk_create(
        Customer(external_id=f"bench-dash-{i}", name=f"Customer {i}", currency="USD")
        for i in range(1000)
    )
    now = timezone.now()
    batch: list[Invoice] = []
    attempts: list[PaymentAttempt] = []
    made = 0
    for i in range(invoices):
        issued = now - timedelta(days=rng.randrange(365), minutes=rng.randrange(1440))
        total = rng.randrange(1000, 200_000)
        roll = rng.random()
        paid = roll < 0.70
        batch.append(
            Invoice(
                customer=customers[i % len(customers)],
                currency="USD",
                period_start=issued,
                period_end=issued,
                status=Invoice.Status.VOIDED if 0.70 <= roll < 0.75 else Invoice.Status.FINALIZED,
                issuer="BENCH",
                number=f"BENCH-{i:07d}",
                issued_at=issued,
                due_date=(issued + timedelta(days=30)).date(),
                fees_amount_cents=total,
                subtotal_amount_cents=total,
                total_amount_cents=total,
                paid_amount_cents=total if paid else 0,
                payment_status=(
                    Invoice.PaymentStatus.SUCCEEDED if paid else Invoice.PaymentStatus.PENDING
                ),
                paid_at=issued + timedelta(days=1) if paid else None,
            )
        )
        if len(batch) == 5000 or i == invoices - 1:
            for invoice in Invoice.objects.bulk_create(batch):
                failed = invoice.payment_status == Invoice.PaymentStatus.PENDING
                if invoice.paid_amount_cents or (failed and rng.random() < 0.33):
                    attempts.append(
                        PaymentAttempt(
                            invoice=invoice,
                            number=1,
                            status="succeeded" if invoice.paid_amount_cents else "failed",
                            amount_cents=invoice.total_amount_cents,
                            currency="USD",
                            idempotency_key=f"bench-dash-{invoice.pk}",
                            failure_code="" if invoice.paid_amount_cents else "card_declined",
                            completed_at=(invoice.issued_at or now) + timedelta(days=1),
                        )
                    )
            PaymentAttempt.objects.bulk_create(attempts)
            made += len(batch)
            batch, attempts = [], []
            print(f"[{NAME}] {made:,} invoices", end="\r", flush=True)
    print()


def _timed(fn, times: int) -> list[float]:
    seconds = []
    for _ in range(times):
        started = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - started)
    return seconds


def _result(target: str, seconds: list[float], baseline: str | None = None) -> Result:
    ordered = sorted(seconds)
    total = sum(seconds)
    return Result(
        benchmark=NAME,
        target=target,
        requests=len(seconds),
        errors=0,
        seconds=total,
        rps=len(seconds) / total,
        p50_ms=statistics.median(ordered) * 1000,
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        baseline=baseline,
    )


def run() -> list[Result]:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.db.models import Sum
    from django.test.client import RequestFactory
    from django.test.utils import CaptureQueriesContext

    from backoffice.dashboard import dashboard
    from billing.invoicing.models import Invoice

    invoices = env_int("BENCH_DASHBOARD_INVOICES", 100_000)
    renders = env_int("BENCH_DASHBOARD_RENDERS", 20)
    started = time.perf_counter()
    _seed(invoices)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"[{NAME}] seeded {invoices:,} invoices in {time.perf_counter() - started:.0f}s")
    user = User.objects.filter(username="bench-dashboard").first() or User.objects.create_superuser(
        "bench-dashboard", password=None
    )

    def render() -> None:
        request = RequestFactory().get("/admin/", {"currency": "USD"})
        request.user = user
        response = dashboard(request)
        response.render()

    def scan() -> None:
        Invoice.objects.filter(currency="USD").aggregate(total=Sum("total_amount_cents"))

    render()  # warm: templates compiled, connection open
    with CaptureQueriesContext(connection) as queries:
        render()
    page = _timed(render, renders)
    floor = _timed(scan, renders)
    result = _result("dashboard", page, baseline="invoice-sum")
    base = _result("invoice-sum", floor)
    result.ratio = result.rps / base.rps
    result.extra = {"queries": float(len(queries.captured_queries))}
    print(
        f"[{NAME}] one render: {len(queries.captured_queries)} queries; "
        f"p50 {result.p50_ms:.0f} ms at {invoices:,} invoices; "
        f"a full SUM over them: p50 {base.p50_ms:.0f} ms"
    )
    return [result, base]
