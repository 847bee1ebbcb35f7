"""Record the intent to sync; the outbox does the network work after commit."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from billing.sync.outbox import outbox_record_sync
from billing.wallets.models import Wallet, WalletTransaction

CREDITS_IN = (WalletTransaction.Kind.GRANT, WalletTransaction.Kind.PURCHASE)


@receiver(post_save, sender=Wallet, dispatch_uid="wallet_sync_intent")
def wallet_saved(sender, instance: Wallet, **kwargs) -> None:
    outbox_record_sync(instance=instance, action="wallet.sync")


@receiver(post_save, sender=WalletTransaction, dispatch_uid="wallet_transaction_sync_intent")
def wallet_transaction_saved(sender, instance: WalletTransaction, created: bool, **kwargs) -> None:
    if created and instance.kind in CREDITS_IN:
        outbox_record_sync(instance=instance, action="wallet_transaction.sync")
