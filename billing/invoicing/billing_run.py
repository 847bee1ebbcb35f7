"""The billing run: every closed period gets its invoice, generated and finalized once.

Periods are queued by the subscription transitions that close them (SubscriptionPeriod,
`billed_at` null). The run claims that queue by primary key in pages (billing/invoicing/
pages.py): each page is one transaction, read, rated and written with a fixed number of
statements, so memory is one page whatever the number of subscriptions and a crash leaves
the page queued. Pages are claimed with SKIP LOCKED, so several runs at once (Celery
workers on any number of machines: BILLING_RUN_WORKERS) bill disjoint pages. Generation
is idempotent per period (a unique index), so two overlapping runs produce one invoice.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.invoicing.inputs import Catalog
from billing.invoicing.models import Invoice
from billing.invoicing.pages import PageOutcome, bill_page
from billing.invoicing.services import invoice_finalize, invoice_generate_for_period
from core.metrics import BILLING_RUN_PERIODS, INVOICES_GENERATED
from subscriptions.models import SubscriptionPeriod

logger = logging.getLogger(__name__)
MAX_ERRORS_KEPT = 100


@dataclass
class BillingRunReport:
    periods: int = 0
    generated: int = 0
    finalized: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def billing_run(
    *,
    batch_size: int | None = None,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BillingRunReport:
    """Generate and finalize the invoice of every closed, unbilled period. Local engine
    only: with Lago as the engine, Lago issues invoices and we mirror them. `progress`
    (core/progress.py) hears (periods done, periods due) as it goes."""
    report = BillingRunReport()
    if settings.BILLING_ENGINE != "local":
        return report
    batch_size = batch_size or settings.BILLING_RUN_BATCH
    started = time.perf_counter()
    # Late events of a closed period are still counted during the grace period; a fee
    # billed ahead (an `advance` moment) has no usage to wait for.
    now = timezone.now()
    ended_before = now - timedelta(minutes=settings.INVOICE_GRACE_MINUTES)
    due = Q(end__lte=ended_before) | Q(reason=SubscriptionPeriod.Reason.ADVANCE, end__lte=now)
    catalog = Catalog()
    last_id = 0
    total = 0
    if progress is not None:
        total = SubscriptionPeriod.objects.filter(due, billed_at__isnull=True).count()
        total = min(total, limit) if limit is not None else total
        progress(0, total)
    while limit is None or report.periods < limit:
        size = batch_size if limit is None else min(batch_size, limit - report.periods)
        outcome = _page(due=due, after_pk=last_id, size=size, catalog=catalog, report=report)
        if not outcome.claimed:
            break
        last_id = outcome.claimed[-1]
        report.periods += len(outcome.claimed)
        if progress is not None:
            progress(report.periods, max(total, report.periods))
        logger.info(
            "billing run progress",
            extra={
                "periods": report.periods,
                "generated": report.generated,
                "finalized": report.finalized,
                "failed": report.failed,
            },
        )
    _finalize_left_drafts(report, ended_before)
    report.seconds = round(time.perf_counter() - started, 3)
    logger.info(
        "billing run finished",
        extra={k: v for k, v in report.__dict__.items() if k != "errors"},
    )
    return report


def _page(
    *, due: Q, after_pk: int, size: int, catalog: Catalog, report: BillingRunReport
) -> PageOutcome:
    """One page in one transaction; if the page fails as a whole, its periods one at a
    time, each in a transaction of its own."""
    claimed: list[int] = []
    # The one-at-a-time periods of a page count only if the page commits.
    inner = BillingRunReport()
    try:
        outcome = bill_page(
            due=due,
            after_pk=after_pk,
            size=size,
            catalog=catalog,
            bill_one=lambda period: _bill(period, inner, catalog),
            claimed=claimed,
        )
    except Exception:
        logger.exception("billing run: page failed, billing its periods one at a time")
        for period in SubscriptionPeriod.objects.filter(pk__in=claimed, billed_at__isnull=True):
            _bill(period, report, catalog)
        return PageOutcome(claimed=claimed)
    report.generated += outcome.generated + inner.generated
    report.finalized += outcome.finalized + inner.finalized
    report.failed += inner.failed
    report.errors += inner.errors[: MAX_ERRORS_KEPT - len(report.errors)]
    if outcome.generated:
        INVOICES_GENERATED.labels(source="billing_run").inc(outcome.generated)
        BILLING_RUN_PERIODS.labels(outcome="invoiced").inc(outcome.generated)
    return outcome


def _bill(period: SubscriptionPeriod, report: BillingRunReport, catalog: Catalog) -> None:
    period_id = period.pk
    try:
        # Generated and finalized together: a crash between the two leaves neither, and
        # the period stays in the queue.
        with transaction.atomic():
            invoice, created = invoice_generate_for_period(period=period, catalog=catalog)
            if invoice.status == Invoice.Status.DRAFT:
                invoice_finalize(invoice=invoice)
                report.finalized += 1
        if created:
            report.generated += 1
            INVOICES_GENERATED.labels(source="billing_run").inc()
        BILLING_RUN_PERIODS.labels(outcome="invoiced").inc()
    except Exception as exc:  # one bad period must not stop the others
        report.failed += 1
        if len(report.errors) < MAX_ERRORS_KEPT:  # the log has them all
            report.errors.append(f"period {period_id}: {exc.__class__.__name__}: {exc}"[:500])
        BILLING_RUN_PERIODS.labels(outcome="failed").inc()
        logger.exception("billing run: period failed", extra={"period_id": period_id})


def _finalize_left_drafts(report: BillingRunReport, ended_before: datetime) -> None:
    """Drafts made through the API for closed periods are issued by the run too, so no
    period stays uncollected because someone generated it and stopped there."""
    drafts = Invoice.objects.filter(
        engine=Invoice.Engine.LOCAL,
        status=Invoice.Status.DRAFT,
        subscription__isnull=False,
        period_end__lte=ended_before,
    ).values_list("pk", flat=True)
    for invoice_id in list(drafts[:10_000]):
        try:
            with transaction.atomic():
                invoice_finalize(invoice=Invoice.objects.get(pk=invoice_id))
            report.finalized += 1
        except Exception as exc:  # e.g. finalized meanwhile by staff
            report.errors.append(f"draft {invoice_id}: {exc.__class__.__name__}: {exc}"[:500])
