from celery import shared_task

from billing import outbox


@shared_task(acks_late=True)
def outbox_process(message_id: int) -> str:
    return outbox.outbox_process(message_id=message_id)


@shared_task
def outbox_sweep() -> int:
    return outbox.outbox_sweep()
