from celery import shared_task

from billing.wallets.services import wallets_expire


@shared_task
def wallets_expire_due() -> int:
    """Beat: wallets past their expiration lose the credits left."""
    return wallets_expire()
