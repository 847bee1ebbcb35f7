from celery import shared_task

from billing.sync import outbox


@shared_task(name=outbox.PROCESS_TASK, acks_late=True)
def outbox_process(message_id: int) -> str:
    return outbox.outbox_process(message_id=message_id)


@shared_task(name="billing.sync.tasks.outbox_sweep")
def outbox_sweep() -> int:
    return outbox.outbox_sweep()
