"""Record the intent to sync; the outbox does the network work after commit."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from billing.invoicing.lago_corrections import ADD_ON_SYNC, CREDIT_NOTE_SYNC
from billing.invoicing.models import AddOn, CreditNote
from billing.sync.outbox import outbox_record_sync


@receiver(post_save, sender=AddOn, dispatch_uid="add_on_sync_intent")
def add_on_saved(sender, instance: AddOn, **kwargs) -> None:
    outbox_record_sync(instance=instance, action=ADD_ON_SYNC)


@receiver(post_save, sender=CreditNote, dispatch_uid="credit_note_sync_intent")
def credit_note_saved(sender, instance: CreditNote, **kwargs) -> None:
    outbox_record_sync(instance=instance, action=CREDIT_NOTE_SYNC)
