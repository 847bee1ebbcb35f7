from celery import shared_task
from django.db import connection
from django.utils import timezone

from billing import outbox

PARTITION_MONTHS_AHEAD = 3


@shared_task(acks_late=True)
def outbox_process(message_id: int) -> str:
    return outbox.outbox_process(message_id=message_id)


@shared_task
def outbox_sweep() -> int:
    return outbox.outbox_sweep()


@shared_task
def usage_partitions_ensure() -> list[str]:
    """Keep monthly usage partitions ready ahead of time: a month without one would send
    its events to the default partition (slow to read, and a later partition for that
    month could not be created while it holds rows)."""
    first = timezone.now().date().replace(day=1)
    created = []
    with connection.cursor() as cursor:
        for months in range(PARTITION_MONTHS_AHEAD + 1):
            year, month = divmod(first.month - 1 + months, 12)
            start = first.replace(year=first.year + year, month=month + 1)
            cursor.execute("SELECT billing_usage_partition(%s)", [start])
            created.append(start.isoformat())
    return created


@shared_task(acks_late=True)
def billing_run() -> dict:
    from billing.billing_run import billing_run as run

    report = run()
    return {k: v for k, v in report.__dict__.items() if k != "errors"}


@shared_task
def invoices_collect_due() -> int:
    from billing.collection import invoices_collect_due as collect

    return collect()


@shared_task
def lago_invoices_pull() -> int:
    from billing.lago_invoices import lago_invoices_pull as pull

    return pull()
