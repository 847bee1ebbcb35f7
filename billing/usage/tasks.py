from celery import shared_task
from django.db import connection
from django.utils import timezone

from billing.usage import forwarding

PARTITION_MONTHS_AHEAD = 3


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


@shared_task(name=forwarding.PROCESS_TASK, acks_late=True)
def usage_forward(run_id: int) -> str:
    return forwarding.usage_forwarding_process(run_id=run_id)


@shared_task(name="billing.usage.tasks.usage_forwarding_sweep")
def usage_forwarding_sweep() -> int:
    return forwarding.usage_forwarding_sweep()
