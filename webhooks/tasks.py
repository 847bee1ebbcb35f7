from celery import shared_task

from webhooks import services


@shared_task(name=services.PROCESS_TASK, acks_late=True)
def webhook_process(event_pk: str) -> str:
    return services.webhook_event_process(event_pk=event_pk)


@shared_task
def webhook_sweep() -> int:
    return services.webhook_sweep()
