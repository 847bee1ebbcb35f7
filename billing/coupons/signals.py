"""Record the intent to sync; the outbox does the network work after commit."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from billing.coupons.models import AppliedCoupon, Coupon
from billing.sync.outbox import outbox_record_sync


@receiver(post_save, sender=Coupon, dispatch_uid="coupon_sync_intent")
def coupon_saved(sender, instance: Coupon, **kwargs) -> None:
    outbox_record_sync(instance=instance, action="coupon.sync")


@receiver(post_save, sender=AppliedCoupon, dispatch_uid="applied_coupon_sync_intent")
def applied_coupon_saved(sender, instance: AppliedCoupon, **kwargs) -> None:
    outbox_record_sync(instance=instance, action="applied_coupon.sync")
