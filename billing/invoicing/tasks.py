from celery import shared_task
from django.conf import settings

from billing.invoicing.billing_run import BillingRunReport
from billing.invoicing.billing_run import billing_run as run
from billing.invoicing.lago_mirror import lago_invoices_pull as pull
from core.progress import JobProgress


def run_summary(report: BillingRunReport) -> str:
    return (
        f"{report.periods} period(s): {report.generated} invoice(s) generated, "
        f"{report.finalized} finalized, {report.failed} failed, in {report.seconds:.1f}s"
    )


@shared_task(acks_late=True)
def billing_run(job_id: str | None = None) -> dict:
    """The beat's run; or one staff started from the admin (`job_id`: its progress, which
    counts this task's pages). BILLING_RUN_WORKERS - 1 more runs start beside it; all of
    them claim pages of the one queue, none twice."""
    for _ in range(settings.BILLING_RUN_WORKERS - 1):
        billing_run_beside.delay()
    progress = JobProgress(job_id) if job_id else None
    try:
        report = run(progress=progress)
    except Exception as exc:
        if progress is not None:
            progress.finish(f"{exc.__class__.__name__}: {exc}", failed=True)
        raise
    if progress is not None:
        progress.finish(run_summary(report))
    return {k: v for k, v in report.__dict__.items() if k != "errors"}


@shared_task(acks_late=True)
def billing_run_beside() -> dict:
    """One more run on the same queue, started by billing_run."""
    report = run()
    return {k: v for k, v in report.__dict__.items() if k != "errors"}


@shared_task
def lago_invoices_pull() -> int:
    return pull()
