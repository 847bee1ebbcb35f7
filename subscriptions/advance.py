"""Pay in advance, as Lago bills it (Subscriptions::ActivateService#bill_subscription,
Subscriptions::FreeTrialBillingService, #activate_for_upgrade): the fee is billed when a
period starts, not when it ends. A renewal bills the next period on the invoice of the one
that ended (billing.invoicing.inputs._next_phase); the other moments (a start, the end of
a trial, an upgrade) are queued here as `advance` rows of SubscriptionPeriod, which the
billing run invoices as soon as they are due."""

from datetime import datetime

from subscriptions.models import Subscription, SubscriptionPeriod
from subscriptions.periods import nominal_period

S = Subscription.Status


def anchor_of(subscription: Subscription) -> datetime:
    """What its periods count from: set when it becomes active, before any period."""
    assert subscription.billing_anchor_at is not None, f"{subscription} has not started"
    return subscription.billing_anchor_at


def nominal_bounds(subscription: Subscription, moment: datetime) -> tuple[datetime, datetime]:
    """The whole period of its current plan around `moment`: what a part of it prorates
    against."""
    return nominal_period(
        interval=subscription.plan.interval,
        billing_time=subscription.billing_time,
        started_at=anchor_of(subscription),
        moment=moment,
    )


def bill_ahead(subscription: Subscription, at: datetime) -> None:
    """Queue the in-advance fee (or an upgrade's credit) due at `at`, once."""
    nominal_start, nominal_end = nominal_bounds(subscription, at)
    SubscriptionPeriod.objects.get_or_create(
        subscription=subscription,
        start=at,
        reason=SubscriptionPeriod.Reason.ADVANCE,
        defaults={
            "end": at,
            "nominal_start": nominal_start,
            "nominal_end": nominal_end,
            "trial_ends_at": subscription.trial_ends_at,
        },
    )


def in_trial(subscription: Subscription, at: datetime) -> bool:
    return subscription.trial_ends_at is not None and subscription.trial_ends_at > at


def open_advance(subscription: Subscription) -> None:
    """A pay-in-advance plan that starts (or restarts) is billed for its first period
    now, or at the end of its trial (Lago bills nothing during a trial)."""
    start = subscription.current_period_start
    assert start is not None, f"{subscription} has no period"
    if in_trial(subscription, start):
        sync_trial_advance(subscription, start)
    elif subscription.plan.pay_in_advance:
        bill_ahead(subscription, start)


def sync_trial_advance(subscription: Subscription, at: datetime) -> None:
    """Keep the trial's end billing what it will bill, after any change at `at`: the
    in-advance fee from the trial's end, queued for that moment while the subscription is
    active on a pay-in-advance plan. A trial that ends on the day a period starts is
    billed by that period's renewal instead (Lago: in_trial_period_not_ending_today?)."""
    SubscriptionPeriod.objects.filter(
        subscription=subscription,
        reason=SubscriptionPeriod.Reason.ADVANCE,
        start__gt=at,
        billed_at__isnull=True,
    ).delete()
    ends = subscription.trial_ends_at
    if ends is None or ends <= at or subscription.status != S.ACTIVE:
        return
    if not subscription.plan.pay_in_advance:
        return
    period_start, _ = nominal_bounds(subscription, ends)
    if period_start.date() != ends.astimezone(period_start.tzinfo).date():
        bill_ahead(subscription, ends)
