from celery import shared_task

from billing.payments.collection import invoices_collect_due as collect


@shared_task
def invoices_collect_due() -> int:
    return collect()
