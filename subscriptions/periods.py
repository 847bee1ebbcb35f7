"""Billing periods, computed the way Lago computes them.

Calendar billing aligns periods to the calendar (weeks start on Monday; months, quarters
and years on the 1st of January/April/July/October); anniversary billing aligns them to the
subscription's start, and a start on the 31st falls on each month's last day without
drifting after February. A period is half-open, [start, end); the first one starts when the
subscription does. Lago shows the same end as `end - 1 s`.
"""

import calendar
from datetime import UTC, datetime, timedelta

MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}
PERIODS_PER_YEAR = {"weekly": 52, "monthly": 12, "quarterly": 4, "yearly": 1}


def _midnight(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def add_months(origin: datetime, months: int) -> datetime:
    """`origin` moved by whole months, clamped to the target month's last day."""
    total = origin.month - 1 + months
    year, month = origin.year + total // 12, total % 12 + 1
    day = min(origin.day, calendar.monthrange(year, month)[1])
    return origin.replace(year=year, month=month, day=day)


def period_containing(
    *, interval: str, billing_time: str, started_at: datetime, moment: datetime
) -> tuple[datetime, datetime]:
    """The billing period [start, end) that contains `moment` (≥ started_at)."""
    start, end = nominal_period(
        interval=interval, billing_time=billing_time, started_at=started_at, moment=moment
    )
    return max(start, started_at), end


def nominal_period(
    *, interval: str, billing_time: str, started_at: datetime, moment: datetime
) -> tuple[datetime, datetime]:
    """The whole billing period around `moment`, not cut at the start: what a partial
    first period is prorated against."""
    midnight = _midnight(started_at)
    if interval == "weekly":
        origin = midnight
        if billing_time == "calendar":
            origin -= timedelta(days=midnight.weekday())
        start = origin + timedelta(weeks=(moment - origin).days // 7)
        end = start + timedelta(weeks=1)
    else:
        months = MONTHS[interval]
        origin = midnight if billing_time == "anniversary" else midnight.replace(month=1, day=1)
        elapsed = (moment.year - origin.year) * 12 + moment.month - origin.month
        if add_months(origin, elapsed) > moment:
            elapsed -= 1
        periods = elapsed // months * months
        # Both ends from the origin, so a 31st anniversary does not drift after February.
        start, end = add_months(origin, periods), add_months(origin, periods + months)
        while end <= moment:  # guards month-end clamping at the edges
            periods += months
            start, end = add_months(origin, periods), add_months(origin, periods + months)
    return start, end


def yearly_amount_cents(*, interval: str, amount_cents: int) -> int:
    """A plan's fixed fee per year, to compare plans of different intervals as Lago does."""
    return amount_cents * PERIODS_PER_YEAR[interval]


def past_periods(
    *, interval: str, billing_time: str, started_at: datetime, now: datetime, limit: int
) -> int:
    """How many periods of a subscription started at `started_at` have ended by `now`,
    counting no further than `limit` + 1 (so a start in year 1 costs nothing to refuse)."""
    count, moment = 0, started_at
    while count <= limit:
        _, end = period_containing(
            interval=interval, billing_time=billing_time, started_at=started_at, moment=moment
        )
        if end > now:
            break
        count, moment = count + 1, end
    return count
