from celery import shared_task

from billing.invoicing.billing_run import billing_run as run
from billing.invoicing.lago_mirror import lago_invoices_pull as pull


@shared_task(acks_late=True)
def billing_run() -> dict:
    report = run()
    return {k: v for k, v in report.__dict__.items() if k != "errors"}


@shared_task
def lago_invoices_pull() -> int:
    return pull()
