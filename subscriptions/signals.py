"""Record the intent to sync; the outbox does the network work after commit."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from billing.sync.outbox import outbox_record_sync
from subscriptions.models import BillableMetric, Charge, Plan, Subscription


@receiver(post_save, sender=BillableMetric, dispatch_uid="metric_sync_intent")
def metric_saved(sender, instance: BillableMetric, **kwargs) -> None:
    outbox_record_sync(instance=instance, action="metric.sync")


@receiver(post_save, sender=Plan, dispatch_uid="plan_sync_intent")
def plan_saved(sender, instance: Plan, **kwargs) -> None:
    outbox_record_sync(instance=instance, action="plan.sync")


@receiver(post_save, sender=Charge, dispatch_uid="charge_sync_intent")
@receiver(post_delete, sender=Charge, dispatch_uid="charge_delete_sync_intent")
def charge_changed(sender, instance: Charge, **kwargs) -> None:
    outbox_record_sync(instance=instance.plan, action="plan.sync")


@receiver(post_save, sender=Subscription, dispatch_uid="subscription_sync_intent")
def subscription_saved(sender, instance: Subscription, **kwargs) -> None:
    outbox_record_sync(instance=instance, action="subscription.sync")
