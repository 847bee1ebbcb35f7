"""Back-dated starts: refused unless asked for, bounded either way, and their past billed
as one catch-up period (one row, so the billing run keeps its one invoice per period row,
idempotent and gaplessly numbered, and collection makes one charge, not one per period)."""

from datetime import UTC, datetime, timedelta

from django.conf import settings

from core.exceptions import UnprocessableEntity
from subscriptions.advance import nominal_bounds
from subscriptions.models import Plan, Subscription, SubscriptionPeriod
from subscriptions.periods import past_periods, period_containing

# start_at bounds: nothing was billed before 2000, and a start years ahead is a typo.
EARLIEST_START_AT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_START_AHEAD = timedelta(days=5 * 366)


def check_start_at(
    plan: Plan, billing_time: str, start_at: datetime, now: datetime, bill_past: bool
) -> None:
    """A back-dated start bills every period since at once (and a charge for each), so it
    is refused unless asked for, and bounded even then: each past period is a row and an
    invoice made in this transaction."""
    if not EARLIEST_START_AT <= start_at <= now + MAX_START_AHEAD:
        raise UnprocessableEntity(
            f"start_at must be from {EARLIEST_START_AT:%Y-%m-%d} to {MAX_START_AHEAD.days} "
            "days from now.",
            code="start_at_out_of_range",
            attr="start_at",
        )
    limit = settings.SUBSCRIPTION_MAX_PAST_PERIODS
    past = past_periods(
        interval=plan.interval, billing_time=billing_time, started_at=start_at, now=now, limit=limit
    )
    # One past period (a start in the previous period, closed at once) is ordinary.
    if past > 1 and not bill_past:
        raise UnprocessableEntity(
            f"start_at is {past} billing periods in the past: send bill_past_periods: true "
            "to bill them.",
            code="start_at_in_past",
            attr="start_at",
        )
    if past > limit:
        raise UnprocessableEntity(
            f"start_at is more than {limit} billing periods in the past.",
            code="start_at_in_past",
            attr="start_at",
        )


def close_catch_up(subscription: Subscription, now: datetime) -> bool:
    """Close every past period of a back-dated start as one row, so the billing run
    issues one catch-up invoice (and collection makes one charge) for them, priced as
    that many periods of the fixed fee. True if it did: the caller moves the subscription
    into the period containing `now`."""
    start = subscription.billing_anchor_at
    assert start is not None, f"{subscription} has not started"
    current_start, _ = period_containing(
        interval=subscription.plan.interval,
        billing_time=subscription.billing_time,
        started_at=start,
        moment=now,
    )
    count = past_periods(
        interval=subscription.plan.interval,
        billing_time=subscription.billing_time,
        started_at=start,
        now=now,
        limit=settings.SUBSCRIPTION_MAX_PAST_PERIODS,
    )
    if count < 2:
        return False  # one past period closes as any period does
    nominal_start, _ = nominal_bounds(subscription, start)
    SubscriptionPeriod.objects.create(
        subscription=subscription,
        start=start,
        end=current_start,
        nominal_start=nominal_start,
        nominal_end=current_start,
        reason=SubscriptionPeriod.Reason.CATCH_UP,
        periods=count,
        trial_ends_at=subscription.trial_ends_at,
    )
    return True
