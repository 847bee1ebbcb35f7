"""Record the intent to sync a saved customer; the outbox does the network work later."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from billing.sync.outbox import outbox_record_sync
from customers.models import Customer


@receiver(post_save, sender=Customer, dispatch_uid="customer_sync_intent")
def customer_saved(sender, instance: Customer, **kwargs) -> None:
    outbox_record_sync(instance=instance, action="customer.sync")
