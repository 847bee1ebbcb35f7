from celery import shared_task

from core.idempotency import idempotency_keys_purge as _purge


@shared_task
def idempotency_keys_purge() -> int:
    return _purge()
