"""The rating engine: a period's fees, fixed (prorated by days) and charged (each charge
rated by billing/invoicing/charge_models.py on the usage of its phase), as Lago bills them.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from billing.invoicing.charge_models import ZERO, charge_amount_cents
from core.iso import currency_exponent

# --- A period's fees -------------------------------------------------------------------
# Proration counts whole days, as Lago does (Fees::SubscriptionService with
# Subscriptions::DatesService and Utils::Datetime.date_diff_with_timezone): a fixed fee
# for a part of a period is amount * days billed / days in the whole (nominal) period,
# rounded half-up once. Days are UTC calendar days (Lago uses the customer's timezone; we
# keep none). The day a stretch starts on is billed; where it ends depends on why:
#   - the period's natural end: up to its last day;
#   - a termination: the termination day is billed (Fees::SubscriptionService
#     #terminated_amount: date_diff from the period start to terminated_at, rounded up);
#   - an upgrade (or any phase change inside a period): that day goes to the new phase
#     (Subscription#date_diff_with_timezone takes a day off a terminated, upgraded
#     subscription; #upgraded_amount bills the new one from the upgrade day).
ENDED_BY_RENEWAL = "renewal"
ENDED_BY_UPGRADE = "upgrade"
ENDED_BY_TERMINATION = "termination"
_INSTANT = timedelta(microseconds=1)


def day_of(moment: datetime) -> date:
    """The UTC calendar day of a moment."""
    return moment.astimezone(UTC).date()


def whole_days(nominal_start: datetime, nominal_end: datetime) -> int:
    """Days in a whole period (Lago's compute_duration): its bounds are midnights."""
    return max((day_of(nominal_end - _INSTANT) - day_of(nominal_start)).days + 1, 1)


def prorate_days(*, amount_cents: int, days: int, whole: int) -> int:
    """A fixed fee for `days` of a period of `whole` days, rounded half-up once: Lago's
    days * single_day_price (Subscriptions::DatesService#single_day_price), in exact
    decimals where Lago multiplies floats (the same cent but at an exact half)."""
    if days <= 0 or amount_cents == 0:
        return 0
    if days >= whole:
        return amount_cents
    share = Decimal(amount_cents) * days / whole
    return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class ChargeBucket:
    """Pricing by dimension: the usage of one of a charge's filters ("" names the default,
    the events no filter matches) and one pricing group, with the properties that price
    it (the filter's own, or the charge's for the default)."""

    filter: str
    grouped_by: dict[str, str | None]
    properties: dict[str, Any]
    units: Decimal
    events: int
    event_values: Sequence[Decimal] = ()
    precise_total_amount_cents: Decimal = ZERO


@dataclass(frozen=True)
class ChargeUsage:
    """One charge of a plan, with the usage it prices over one stretch of time."""

    metric_code: str
    charge_model: str
    properties: dict[str, Any]
    units: Decimal
    event_values: Sequence[Decimal] = ()
    # The metric's aggregation, and the sum of the events' own amounts (dynamic).
    aggregation: str = "sum"
    precise_total_amount_cents: Decimal = ZERO
    # With filters or pricing_group_keys: the usage per filter and group, each its own fee.
    buckets: Sequence[ChargeBucket] = ()


@dataclass(frozen=True)
class PhaseUsage:
    """A stretch [start, end) of the period on one plan (with its overrides)."""

    plan_code: str
    plan_name: str
    amount_cents: int
    pay_in_advance: bool
    start: datetime
    end: datetime
    charges: Sequence[ChargeUsage]
    # Pay in advance: was this stretch's fee billed ahead (at the start, a renewal, the
    # end of a trial or an upgrade)? Then the period's end invoice does not bill it again.
    billed_ahead: bool = False
    # Billed ahead as part of the stretch before it (a change of overrides): its
    # amount_cents is what that stretch paid.
    continues_prepaid: bool = False
    # Lago's minimum commitment of the plan (or the subscription's override) for a whole
    # period, and the true-up line's name; None: no commitment.
    minimum_commitment_cents: int | None = None
    minimum_commitment_name: str = ""


@dataclass(frozen=True)
class PeriodInput:
    currency: str
    start: datetime
    end: datetime
    nominal_start: datetime
    nominal_end: datetime
    phases: Sequence[PhaseUsage]
    trial_ends_at: datetime | None = None
    # Why the period ended where it did: what its last day counts as (ENDED_BY_*).
    ended_by: str = ENDED_BY_RENEWAL
    # Pay in advance, billed ahead: the plan the fee is billed for, from its start to the
    # end of its period (on a renewal, the next period; on an `advance` row, the period
    # the moment falls in), and that period's whole bounds.
    next_phase: PhaseUsage | None = None
    next_nominal: tuple[datetime, datetime] | None = None
    # On an `advance` row for an upgrade: the prepaid plan it ends, from the upgrade to the
    # end of its period (whose whole bounds follow), credited for the days not used.
    credit: PhaseUsage | None = None
    credit_nominal: tuple[datetime, datetime] | None = None
    # An `advance` row: a moment (start == end) billing fees ahead, with no usage.
    advance: bool = False


@dataclass(frozen=True)
class Fee:
    fee_type: str  # "subscription" | "charge" | "commitment"
    description: str
    plan_code: str
    amount_cents: int
    units: Decimal
    unit_amount: Decimal
    start: datetime
    end: datetime
    metric_code: str = ""
    charge_model: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    # Pricing by dimension: the charge filter's display name and the pricing group.
    filter: str = ""
    grouped_by: dict[str, str | None] = field(default_factory=dict)


def _unit_amount(amount_cents: int, units: Decimal, currency: str) -> Decimal:
    if units == 0:
        return ZERO
    major = Decimal(amount_cents) / (Decimal(10) ** currency_exponent(currency))
    return (major / units).quantize(Decimal("0.000000000001"), rounding=ROUND_HALF_UP)


def billed_days(
    start: datetime, last_day: date, trial_ends_at: datetime | None, end: datetime
) -> int:
    """Days from the day of `start` to `last_day`, both included, less the trial: as Lago
    (Fees::SubscriptionService), nothing if the trial lasts to the stretch's end, and from
    the trial's last day (billed) if it ends inside it."""
    first = day_of(start)
    if trial_ends_at is not None and trial_ends_at > start:
        if trial_ends_at >= end:
            return 0
        first = day_of(trial_ends_at)
    return max((last_day - first).days + 1, 0)


def _fixed_fee(
    phase: PhaseUsage,
    *,
    start: datetime,
    end: datetime,
    last_day: date,
    nominal: tuple[datetime, datetime],
    period: PeriodInput,
    label: str,
    sign: int = 1,
) -> Fee:
    whole = whole_days(*nominal)
    days = min(billed_days(start, last_day, period.trial_ends_at, end), whole)
    amount = sign * prorate_days(amount_cents=phase.amount_cents, days=days, whole=whole)
    return Fee(
        fee_type="subscription",
        description=f"{phase.plan_name or phase.plan_code} {label}",
        plan_code=phase.plan_code,
        amount_cents=amount,
        units=Decimal(1),
        unit_amount=_unit_amount(amount, Decimal(1), period.currency),
        start=start,
        end=end,
    )


def _credit(phase: PhaseUsage, **where: Any) -> list[Fee]:
    """The unused days of a prepaid stretch, as a negative line; none for nothing
    (CreditNotes::CreateFromTermination returns early on a zero amount)."""
    fee = _fixed_fee(phase, label="unused time (credit)", sign=-1, **where)
    return [fee] if fee.amount_cents else []


def _last_day(phase: PhaseUsage, period: PeriodInput) -> date:
    """The last day a stretch of a closed period is billed for (see the rules above)."""
    if phase.end < period.end or period.ended_by == ENDED_BY_UPGRADE:
        return day_of(phase.end) - timedelta(days=1)  # the next phase's day
    if period.ended_by == ENDED_BY_TERMINATION:
        return day_of(phase.end)
    return day_of(period.end - _INSTANT)


def _all_in_trial(phase: PhaseUsage, trial_ends_at: datetime | None) -> bool:
    return trial_ends_at is not None and trial_ends_at >= phase.end


def _in_trial_on(day: date, trial_ends_at: datetime | None) -> bool:
    """Still in trial after `day`: Lago bills no in-advance fee before the trial's last
    day (Invoices::CalculateFeesService#in_trial_period_not_ending_today?); the trial's
    end bills it (Subscriptions::FreeTrialBillingService)."""
    return trial_ends_at is not None and day_of(trial_ends_at) > day


def rate_period(period: PeriodInput) -> list[Fee]:
    """The fees of one closed period, or of one `advance` moment.

    A period: each phase's fixed fee prorated by days (in arrears; or in advance if it
    was not billed ahead), and every charge of every phase on the usage of that phase; a
    termination credits the days a prepaid phase did not use (Lago issues a credit note:
    CreditNotes::CreateFromTermination, from the day after the termination to the period's
    end); a renewal bills the next period's fee of a pay-in-advance plan
    (Fees::SubscriptionService#full_period_amount, billed at the start of each period).

    An `advance` moment: a pay-in-advance fee from that moment to its period's end (the
    start of a subscription: #first_subscription_amount; the end of a trial; an upgrade:
    #upgraded_amount, from the upgrade day), and on an upgrade the unused days of the
    prepaid plan it ends, from the upgrade day included (CreditNotes::CreateFromTermination
    #remaining_duration, `billed_from -= 1.day if upgrade`).
    """
    fees: list[Fee] = []
    nominal = (period.nominal_start, period.nominal_end)
    for index, phase in enumerate(period.phases):
        if phase.pay_in_advance and _all_in_trial(phase, period.trial_ends_at):
            pass  # Lago bills no fee in a trial, and credits none
        elif not (phase.pay_in_advance and phase.billed_ahead):
            label = "in advance" if phase.pay_in_advance else "in arrears"
            fees.append(
                _fixed_fee(
                    phase,
                    start=phase.start,
                    end=phase.end,
                    last_day=_last_day(phase, period),
                    nominal=nominal,
                    period=period,
                    label=label,
                )
            )
        elif (
            period.ended_by == ENDED_BY_TERMINATION
            and index == len(period.phases) - 1
            and phase.end < period.nominal_end
        ):
            # Prepaid to the period's end, terminated: the days after the termination day.
            fees.extend(
                _credit(
                    phase,
                    start=_next_midnight(phase.end),
                    end=period.nominal_end,
                    last_day=day_of(period.nominal_end - _INSTANT),
                    nominal=nominal,
                    period=period,
                )
            )
        fees.extend(_charge_fees(phase, period.currency))
    if period.credit is not None and period.credit.pay_in_advance:
        credit_nominal = period.credit_nominal or nominal
        fees.extend(
            _credit(
                period.credit,
                start=period.credit.start,
                end=credit_nominal[1],
                last_day=day_of(credit_nominal[1] - _INSTANT),
                nominal=credit_nominal,
                period=period,
            )
        )
    upcoming = period.next_phase
    if (
        upcoming is not None
        and upcoming.pay_in_advance
        and not _in_trial_on(day_of(upcoming.start), period.trial_ends_at)
    ):
        next_nominal = period.next_nominal or (upcoming.start, upcoming.end)
        fees.append(
            _fixed_fee(
                upcoming,
                start=upcoming.start,
                end=upcoming.end,
                last_day=day_of(next_nominal[1] - _INSTANT),
                nominal=next_nominal,
                period=period,
                label="in advance" if period.advance else "in advance (next period)",
            )
        )
    fees.extend(commitment_true_ups(period, fees))
    return fees


def _next_midnight(moment: datetime) -> datetime:
    return datetime.combine(day_of(moment) + timedelta(days=1), time(), tzinfo=UTC)


def _charge_fees(phase: PhaseUsage, currency: str) -> list[Fee]:
    fees: list[Fee] = []
    for charge in phase.charges:
        if charge.buckets:
            fees.extend(_bucket_fees(charge, phase, currency))
            continue
        amount = charge_amount_cents(
            charge_model=charge.charge_model,
            properties=charge.properties,
            units=charge.units,
            currency=currency,
            event_values=charge.event_values,
            aggregation=charge.aggregation,
            precise_total_amount_cents=charge.precise_total_amount_cents,
        )
        fees.append(_charge_fee(charge, phase, amount, charge.units, charge.properties, currency))
    return fees


def _bucket_fees(charge: ChargeUsage, phase: PhaseUsage, currency: str) -> list[Fee]:
    """One fee per filter and pricing group, as Lago's Fees::ChargeService: each priced
    on its own units by its own properties. Like Lago, a bucket without events and without
    an amount bills nothing; a charge none of whose buckets bills keeps one zero fee."""
    fees = []
    for bucket in charge.buckets:
        amount = charge_amount_cents(
            charge_model=charge.charge_model,
            properties=bucket.properties,
            units=bucket.units,
            currency=currency,
            event_values=bucket.event_values,
            aggregation=charge.aggregation,
            precise_total_amount_cents=bucket.precise_total_amount_cents,
        )
        if bucket.events == 0 and amount == 0:
            continue
        fees.append(_bucket_fee(charge, phase, bucket, amount, currency))
    if not fees:
        default = charge.buckets[-1]
        fees.append(
            _bucket_fee(charge, phase, replace(default, units=ZERO, grouped_by={}), 0, currency)
        )
    return fees


def _bucket_fee(
    charge: ChargeUsage, phase: PhaseUsage, bucket: ChargeBucket, amount: int, currency: str
) -> Fee:
    groups = [str(value) if value is not None else "(none)" for value in bucket.grouped_by.values()]
    named = ", ".join(part for part in [bucket.filter, *groups] if part)
    return replace(
        _charge_fee(charge, phase, amount, bucket.units, bucket.properties, currency),
        description=f"{charge.metric_code} — {named}" if named else charge.metric_code,
        filter=bucket.filter,
        grouped_by=dict(bucket.grouped_by),
    )


def _charge_fee(
    charge: ChargeUsage,
    phase: PhaseUsage,
    amount: int,
    units: Decimal,
    properties: dict[str, Any],
    currency: str,
) -> Fee:
    return Fee(
        fee_type="charge",
        description=charge.metric_code,
        plan_code=phase.plan_code,
        amount_cents=amount,
        units=units,
        unit_amount=_unit_amount(amount, units, currency),
        start=phase.start,
        end=phase.end,
        metric_code=charge.metric_code,
        charge_model=charge.charge_model,
        properties=properties,
    )


# --- Minimum commitment ------------------------------------------------------------------
# Lago (app/services/commitments/**, fees/commitments/minimum/create_service.rb): when the
# fees of a period fall short of the plan's minimum commitment, a `commitment` fee makes
# up the difference. The commitment is prorated by the share of the period the plan
# covered (calculate_prorated_coefficient_service.rb); counted are the period's own
# subscription fee, even when it was paid in advance on the invoice before (and in full:
# a termination's refund is Lago's credit note, not a fee), and the period's charges; not
# the next period's advance fee. No shortfall, no line.

COMMITMENT_NAME = "Minimum commitment"  # Lago's config/locales/en/commitment.yml


def commitment_true_ups(period: PeriodInput, fees: Sequence[Fee]) -> list[Fee]:
    """One true-up per plan the period ran on (consecutive phases of one plan: Lago ends
    the subscription on an upgrade, and bills each one's commitment on its own), its
    commitment prorated by the days that plan covered, counted as the fixed fee is."""
    whole = whole_days(period.nominal_start, period.nominal_end)
    lines = []
    for run in _plan_runs(period.phases):
        last = run[-1]
        if not last.minimum_commitment_cents:
            continue
        start, end = run[0].start, last.end
        days = min((_last_day(last, period) - day_of(start)).days + 1, whole)
        commitment = prorate_days(
            amount_cents=last.minimum_commitment_cents, days=days, whole=whole
        )
        counted = sum(_counted_cents(period, phase, fees) for phase in run)
        true_up = commitment - counted
        if true_up <= 0:
            continue
        lines.append(
            Fee(
                fee_type="commitment",
                description=last.minimum_commitment_name or COMMITMENT_NAME,
                plan_code=last.plan_code,
                amount_cents=true_up,
                units=Decimal(1),
                unit_amount=_unit_amount(true_up, Decimal(1), period.currency),
                start=start,
                end=end,
            )
        )
    return lines


def _plan_runs(phases: Sequence[PhaseUsage]) -> list[list[PhaseUsage]]:
    runs: list[list[PhaseUsage]] = []
    for phase in phases:
        if runs and runs[-1][-1].plan_code == phase.plan_code:
            runs[-1].append(phase)
        else:
            runs.append([phase])
    return runs


def _counted_cents(period: PeriodInput, phase: PhaseUsage, fees: Sequence[Fee]) -> int:
    """What one phase's own time was billed: its fixed fee and its charges; a fee billed
    ahead (on an earlier invoice, up to the period's end) counts here in full."""
    own = sum(
        fee.amount_cents
        for fee in fees
        if (fee.fee_type == "charge" or (fee.fee_type == "subscription" and fee.amount_cents >= 0))
        and fee.plan_code == phase.plan_code
        and (fee.start, fee.end) == (phase.start, phase.end)
    )
    if phase.pay_in_advance and phase.billed_ahead and not phase.continues_prepaid:
        # The stretch's whole prepaid fee, once: phases continuing it add nothing.
        own += _fixed_fee(
            phase,
            start=phase.start,
            end=period.nominal_end,
            last_day=day_of(period.nominal_end - _INSTANT),
            nominal=(period.nominal_start, period.nominal_end),
            period=period,
            label="",
        ).amount_cents
    return own
