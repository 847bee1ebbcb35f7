from celery import shared_task

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
    """The beat's run; or one staff started from the admin (`job_id`: its progress)."""
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


@shared_task
def lago_invoices_pull() -> int:
    return pull()
