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
from dataclasses import dataclass, field

from django.conf import settings

from billing.invoice_models import Invoice
from billing.invoices import invoice_finalize, invoice_generate_for_period
from core.metrics import BILLING_RUN_PERIODS, INVOICES_GENERATED
from subscriptions.models import SubscriptionPeriod

logger = logging.getLogger(__name__)


@dataclass
class BillingRunReport:
    periods: int = 0
    generated: int = 0
    finalized: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def billing_run(*, batch_size: int | None = None, limit: int | None = None) -> BillingRunReport:
    """Generate and finalize the invoice of every closed, unbilled period. Local engine
    only: with Lago as the engine, Lago issues invoices and we mirror them."""
    report = BillingRunReport()
    if settings.BILLING_ENGINE != "local":
        return report
    batch_size = batch_size or settings.BILLING_RUN_BATCH
    started = time.perf_counter()
    last_id = 0
    while limit is None or report.periods < limit:
        page = list(
            SubscriptionPeriod.objects.filter(billed_at__isnull=True, pk__gt=last_id)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not page:
            break
        for period_id in page:
            last_id = period_id
            report.periods += 1
            _bill(period_id, report)
        logger.info(
            "billing run progress",
            extra={
                "periods": report.periods,
                "generated": report.generated,
                "finalized": report.finalized,
                "failed": report.failed,
            },
        )
    report.seconds = round(time.perf_counter() - started, 3)
    logger.info(
        "billing run finished",
        extra={k: v for k, v in report.__dict__.items() if k != "errors"},
    )
    return report


def _bill(period_id: int, report: BillingRunReport) -> None:
    try:
        period = SubscriptionPeriod.objects.get(pk=period_id)
        invoice, created = invoice_generate_for_period(period=period)
        if created:
            report.generated += 1
            INVOICES_GENERATED.labels(source="billing_run").inc()
        if invoice.status == Invoice.Status.DRAFT:
            invoice_finalize(invoice=invoice)
            report.finalized += 1
        BILLING_RUN_PERIODS.labels(outcome="invoiced").inc()
    except Exception as exc:  # one bad period must not stop the others
        report.failed += 1
        report.errors.append(f"period {period_id}: {exc.__class__.__name__}: {exc}"[:500])
        BILLING_RUN_PERIODS.labels(outcome="failed").inc()
        logger.exception("billing run: period failed", extra={"period_id": period_id})
