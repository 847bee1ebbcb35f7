"""The billing run: every closed period gets its invoice, generated and finalized once.

Periods are queued by the subscription transitions that close them (SubscriptionPeriod,
`billed_at` null). The run walks that queue by primary key in pages, so its memory is one
page whatever the number of subscriptions, and each period is handled in its own
transaction: a crash loses at most the period in hand, which the next run picks up.
Generation is idempotent per period (a unique index), so two overlapping runs produce
one invoice.
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
        page = list(
            SubscriptionPeriod.objects.filter(due, billed_at__isnull=True, pk__gt=last_id).order_by(
                "pk"
            )[:batch_size]
        )
        if not page:
            break
        for period in page:
            last_id = period.pk
            report.periods += 1
            _bill(period, report, catalog)
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
