"""The rating engine: from units (and events) to money, following Lago's charge models
(lago-api app/services/charge_models/*.rb; each rule below names its source).

Pure and deterministic: Decimal throughout, and one half-up rounding to the currency's
minor unit per fee, at the end. Units are decimals (a `sum` can be fractional).

- standard: units * amount.
- graduated: each range prices the units that fall in it, plus its flat amount once the
  usage reaches it; the first range's flat amount is due even at zero units
  (graduated_service.rb). Ranges are written 0-10, 11-20, 21+ (10, 10 and the rest) or,
  adjacent, 0-0.1, 0.1-1, 1+ (Lago's adjacent_ranges?).
- volume: every unit at the price of the range the total falls in, plus that range's flat
  amount; at zero units, the first range's flat amount (volume_service.rb).
- package: units past `free_units`, in started packages of `package_size`, * amount.
- percentage: `rate` % of the units past the free allowance, plus `fixed_amount` per
  event past the free events (percentage_service.rb); with a per-transaction min or max,
  event by event instead.
- graduated_percentage: graduated, with a `rate` % per range instead of a unit price
  (graduated_percentage_service.rb).
- dynamic: the sum of the amounts the events carried (`precise_total_amount_cents`), none
  if the metric's units are zero (dynamic_service.rb).
"""

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

from core.iso import currency_exponent

ZERO = Decimal(0)

# A charge's properties and price ranges as Lago writes them (JSON, checked on the way in
# by subscriptions.charges.validate_properties): amounts are decimal strings, range bounds
# JSON numbers (integers, or decimals such as 0.1).
Properties = Mapping[str, Any]
PriceRange = Mapping[str, Any]


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Major units (Decimal) to integer minor units, rounded half-up once."""
    exponent = currency_exponent(currency)
    return int((amount * (Decimal(10) ** exponent)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def bound(value: Any) -> Decimal:
    """A range bound (a JSON int or float, e.g. 0.1) as the decimal it was written as."""
    return Decimal(str(value))


def adjacent_ranges(ranges: Sequence[PriceRange]) -> bool:
    """Lago's adjacent_ranges? (graduated_service.rb): each range starts at the previous
    one's to_value (0-0.1, 0.1-1) rather than one past it (0-10, 11-20)."""
    return len(ranges) >= 2 and all(
        bound(cur["from_value"]) == bound(prev["to_value"] or 0)
        for prev, cur in itertools.pairwise(ranges)
    )


def range_units(
    units: Decimal, ranges: Sequence[PriceRange], *, adjacent: bool
) -> list[tuple[PriceRange, Decimal]]:
    """Each range the usage reaches, with the units it prices (RangeGraduatedService /
    RangeGraduatedPercentageService): the first range is always reached, even at zero
    units, and the walk stops at the range whose to_value holds the total."""
    reached = []
    for item in ranges:
        to_value = None if item["to_value"] is None else bound(item["to_value"])
        from_value = bound(item["from_value"])
        effective = to_value if to_value is not None and units >= to_value else units
        # A range from 0 starts at 0; another at its from_value (adjacent) or one below.
        step = 0 if adjacent else 1
        in_range = effective if from_value == 0 else effective - from_value + step
        reached.append((item, in_range))
        if to_value is None or to_value >= units:
            break
    return reached


def graduated(units: Decimal, ranges: Sequence[PriceRange]) -> Decimal:
    return sum(
        (
            in_range * Decimal(item["per_unit_amount"]) + Decimal(item["flat_amount"])
            for item, in_range in range_units(units, ranges, adjacent=adjacent_ranges(ranges))
        ),
        ZERO,
    )


def graduated_percentage(units: Decimal, ranges: Sequence[PriceRange]) -> Decimal:
    # Lago prices each range from_value..to_value inclusive (one past the previous range).
    return sum(
        (
            in_range * Decimal(item["rate"]) / 100 + Decimal(item["flat_amount"])
            for item, in_range in range_units(units, ranges, adjacent=False)
        ),
        ZERO,
    )


def volume(units: Decimal, ranges: Sequence[PriceRange]) -> Decimal:
    if units < 0:
        return ZERO  # no range holds it (Lago finds none either)
    ceiling = units.to_integral_value(ROUND_CEILING)
    for item in ranges:
        if bound(item["from_value"]) <= ceiling and (
            item["to_value"] is None or units <= bound(item["to_value"])
        ):
            return units * Decimal(item["per_unit_amount"]) + Decimal(item["flat_amount"])
    return ZERO  # unreachable: validated ranges hold every usage


def package(units: Decimal, properties: Properties) -> Decimal:
    paid = units - Decimal(properties.get("free_units") or 0)
    if paid <= 0:
        return ZERO
    packages = (paid / Decimal(properties["package_size"])).to_integral_value(ROUND_CEILING)
    return packages * Decimal(properties["amount"])


@dataclass(frozen=True)
class MetricUsage:
    """What the percentage model reads of a metric's usage over the period, as Lago's
    aggregation result gives it: the units, the events counted (for a unique_count, the
    unique values), and each event's value in time order (the stored value of a sum or
    max event; count events carry none)."""

    aggregation: str
    units: Decimal
    event_values: Sequence[Decimal] = ()

    @property
    def count(self) -> int:
        # unique_count_service.rb: result.count = result.aggregation.
        if self.aggregation == "unique_count":
            return int(self.units)
        return len(self.event_values)

    def per_event(self) -> list[Decimal]:
        """per_event_aggregation: a sum's values; 1 per event of a count or unique_count;
        a max's first maximum, 0 for the others."""
        if self.aggregation == "sum":
            return list(self.event_values)
        if self.aggregation == "max":
            top = max(self.event_values, default=ZERO)
            first = next((i for i, v in enumerate(self.event_values) if v == top), -1)
            return [v if i == first else ZERO for i, v in enumerate(self.event_values)]
        return [Decimal(1)] * len(self.event_values)

    def running_total(self, free_events: int, free_value: Decimal) -> Sequence[Decimal]:
        """The aggregation's running_total option (sum_service.rb, count_service.rb):
        a sum's cumulative values over the first `free_events` events, or else until they
        pass `free_value`; 1, 2, ... units for a count or unique_count (a range, not a
        list: a count can be millions); none for a max."""
        if free_events == 0 and free_value == 0:
            return []
        if self.aggregation in ("count", "unique_count"):
            return _Counting(int(self.units))
        if self.aggregation != "sum":
            return []
        totals: list[Decimal] = []
        total = ZERO
        for value in self.event_values[:free_events] if free_events else self.event_values:
            if not free_events and free_value < total:
                break
            total += value
            totals.append(total)
        return totals


class _Counting(Sequence[Decimal]):
    """1, 2, ..., n as Decimals, without holding them."""

    def __init__(self, n: int) -> None:
        self._range = range(1, n + 1)

    def __len__(self) -> int:
        return len(self._range)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [Decimal(i) for i in self._range[index]]
        return Decimal(self._range[index])

    def count_below(self, limit: Decimal) -> int:
        # i < limit for i in 1..n
        return max(0, min(len(self._range), int(limit.to_integral_value(ROUND_CEILING)) - 1))


def _count_below(running: Sequence[Decimal], limit: Decimal) -> int:
    if isinstance(running, _Counting):
        return running.count_below(limit)
    return sum(1 for total in running if total < limit)


def percentage(usage: MetricUsage, properties: Properties) -> Decimal:
    """percentage_service.rb. Without a per-transaction min or max: `rate` % of the units
    past the free units, plus `fixed_amount` for each event past the free events. With
    one: event by event (compute_amount_with_transaction_min_max)."""
    rate = Decimal(properties["rate"])
    fixed = Decimal(properties.get("fixed_amount") or 0)
    free_events = int(properties.get("free_units_per_events") or 0)
    free_value = Decimal(properties.get("free_units_per_total_aggregation") or 0)
    low, high = (
        properties.get("per_transaction_min_amount"),
        properties.get("per_transaction_max_amount"),
    )
    if low is not None or high is not None:
        return _per_transaction(usage.per_event(), rate, fixed, free_events, free_value, low, high)
    units = usage.units
    running = usage.running_total(free_events, free_value)
    last = running[-1] if running else ZERO
    # free_units_value: the first free events' value, capped by the free total.
    if last == 0:
        free_units = ZERO
    elif 0 < free_events < len(running):
        free_units = running[free_events - 1]
    elif free_value == 0 or last <= free_value:
        free_units = last
    else:
        free_units = free_value
    # free_units_count: the free events, or those still under the free total if fewer.
    counts = [c for c in (free_events, _count_below(running, free_value)) if c]
    free_count = min(counts, default=0)
    amount = ZERO if free_units > units else (units - free_units) * rate / 100
    if units != 0 and free_count < usage.count:
        amount += (usage.count - free_count) * fixed
    return amount


def _per_transaction(
    values: Sequence[Decimal],
    rate: Decimal,
    fixed: Decimal,
    free_events: int,
    free_value: Decimal,
    low: str | None,
    high: str | None,
) -> Decimal:
    """Event by event: an event the free allowance covers whole costs nothing (no fixed
    fee, no minimum); the free amount, when set, runs until it is used up whatever the
    free events; without one, the first `free_events` events are free."""
    total = ZERO
    for event_value in values:
        value = event_value
        if free_events > 0 or free_value > 0:
            free_events -= 1
            if free_value <= 0:
                continue
            if free_value > value:
                free_value -= value
                continue
            value -= free_value
            free_value, free_events = ZERO, 0
        amount = value * rate / 100 + fixed
        if low is not None and amount < Decimal(low):
            amount = Decimal(low)
        elif high is not None and amount > Decimal(high):
            amount = Decimal(high)
        total += amount
    return total


def dynamic(units: Decimal, precise_total_amount_cents: Decimal, currency: str) -> Decimal:
    """dynamic_service.rb: the events' own amounts, in minor units, summed; nothing when
    the metric's units are zero."""
    if units == 0:
        return ZERO
    return precise_total_amount_cents / (Decimal(10) ** currency_exponent(currency))


def charge_amount(
    *,
    charge_model: str,
    properties: Properties,
    units: Decimal,
    event_values: Sequence[Decimal] = (),
    aggregation: str = "sum",
    precise_total_amount_cents: Decimal = ZERO,
    currency: str = "USD",
) -> Decimal:
    """The fee of one charge for a period, in major units, before rounding."""
    if charge_model == "standard":
        return units * Decimal(properties["amount"])
    if charge_model == "graduated":
        return graduated(units, properties["graduated_ranges"])
    if charge_model == "volume":
        return volume(units, properties["volume_ranges"])
    if charge_model == "package":
        return package(units, properties)
    if charge_model == "percentage":
        return percentage(MetricUsage(aggregation, units, event_values), properties)
    if charge_model == "graduated_percentage":
        return graduated_percentage(units, properties["graduated_percentage_ranges"])
    if charge_model == "dynamic":
        return dynamic(units, precise_total_amount_cents, currency)
    raise ValueError(f"unknown charge model {charge_model!r}")


def charge_amount_cents(
    *,
    charge_model: str,
    properties: Properties,
    units: Decimal,
    currency: str,
    event_values: Sequence[Decimal] = (),
    aggregation: str = "sum",
    precise_total_amount_cents: Decimal = ZERO,
) -> int:
    return to_minor_units(
        charge_amount(
            charge_model=charge_model,
            properties=properties,
            units=units,
            event_values=event_values,
            aggregation=aggregation,
            precise_total_amount_cents=precise_total_amount_cents,
            currency=currency,
        ),
        currency,
    )


# --- A period's fees -------------------------------------------------------------------
# Proration is by elapsed time against the whole (nominal) period: on whole days, which
# is what periods start and end on, that is Lago's "by days".


def prorate_cents(*, amount_cents: int, part: timedelta, whole: timedelta) -> int:
    """A fixed fee for `part` of a period of length `whole`, rounded half-up once."""
    if part <= timedelta(0) or amount_cents == 0:
        return 0
    if part >= whole:
        return amount_cents
    share = Decimal(amount_cents) * _seconds(part) / _seconds(whole)
    return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _seconds(delta: timedelta) -> Decimal:
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 10**6


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


@dataclass(frozen=True)
class PeriodInput:
    currency: str
    start: datetime
    end: datetime
    nominal_start: datetime
    nominal_end: datetime
    phases: Sequence[PhaseUsage]
    trial_ends_at: datetime | None = None
    # Pay-in-advance: was this period's fee billed on the previous invoice? And the next
    # period's plan and nominal bounds, if the subscription renews into it.
    prepaid: bool = False
    next_phase: PhaseUsage | None = None
    # The whole period the next phase's fee is prorated against (a downgrade to another
    # interval can start with a partial period).
    next_nominal: tuple[datetime, datetime] | None = None


@dataclass(frozen=True)
class Fee:
    fee_type: str  # "subscription" | "charge"
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


def _billable(start: datetime, end: datetime, trial_ends_at: datetime | None) -> timedelta:
    if trial_ends_at is not None:
        start = max(start, trial_ends_at)
    return max(end - start, timedelta(0))


def _fixed_fee(
    phase: PhaseUsage,
    start: datetime,
    end: datetime,
    whole: timedelta,
    period: PeriodInput,
    label: str,
) -> Fee:
    part = _billable(start, end, period.trial_ends_at)
    amount = prorate_cents(amount_cents=phase.amount_cents, part=part, whole=whole)
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


def rate_period(period: PeriodInput) -> list[Fee]:
    """The fees of one closed period: fixed fees prorated over each phase, in arrears or
    in advance, and every charge of every phase on the usage of that phase.

    Pay in advance: a period's fee is billed on the invoice of the period before it; the
    first period of a subscription is billed on its own invoice. When a prepaid period is
    cut (an upgrade, a termination), the unused part of what was prepaid is credited and
    the phases after the cut are billed for what they cover.
    """
    whole = period.nominal_end - period.nominal_start
    fees: list[Fee] = []
    for index, phase in enumerate(period.phases):
        if phase.pay_in_advance and index == 0 and period.prepaid:
            # Prepaid up to the nominal end; whatever this phase did not use, because of
            # an upgrade, a termination or a new interval, is credited.
            if phase.end < period.nominal_end:
                credit = _fixed_fee(
                    phase, phase.end, period.nominal_end, whole, period, "unused time (credit)"
                )
                fees.append(
                    Fee(
                        **{
                            **credit.__dict__,
                            "amount_cents": -credit.amount_cents,
                            "unit_amount": -credit.unit_amount,
                        }
                    )
                )
        else:
            label = "in advance" if phase.pay_in_advance else "in arrears"
            fees.append(_fixed_fee(phase, phase.start, phase.end, whole, period, label))
        for charge in phase.charges:
            if charge.buckets:
                fees.extend(_bucket_fees(charge, phase, period.currency))
                continue
            amount = charge_amount_cents(
                charge_model=charge.charge_model,
                properties=charge.properties,
                units=charge.units,
                currency=period.currency,
                event_values=charge.event_values,
                aggregation=charge.aggregation,
                precise_total_amount_cents=charge.precise_total_amount_cents,
            )
            fees.append(
                Fee(
                    fee_type="charge",
                    description=charge.metric_code,
                    plan_code=phase.plan_code,
                    amount_cents=amount,
                    units=charge.units,
                    unit_amount=_unit_amount(amount, charge.units, period.currency),
                    start=phase.start,
                    end=phase.end,
                    metric_code=charge.metric_code,
                    charge_model=charge.charge_model,
                    properties=charge.properties,
                )
            )
    upcoming = period.next_phase
    if upcoming is not None and upcoming.pay_in_advance:
        nominal_start, nominal_end = period.next_nominal or (upcoming.start, upcoming.end)
        fees.append(
            _fixed_fee(
                upcoming,
                upcoming.start,
                upcoming.end,
                nominal_end - nominal_start,
                period,
                "in advance (next period)",
            )
        )
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
    return Fee(
        fee_type="charge",
        description=f"{charge.metric_code} — {named}" if named else charge.metric_code,
        plan_code=phase.plan_code,
        amount_cents=amount,
        units=bucket.units,
        unit_amount=_unit_amount(amount, bucket.units, currency),
        start=phase.start,
        end=phase.end,
        metric_code=charge.metric_code,
        charge_model=charge.charge_model,
        properties=bucket.properties,
        filter=bucket.filter,
        grouped_by=dict(bucket.grouped_by),
    )


def invoice_totals(*, fees: Sequence[Fee], tax_rate: Decimal, currency: str) -> tuple[int, int]:
    """(subtotal, taxes) in minor units: taxes rounded half-up once, on the subtotal."""
    subtotal = sum(fee.amount_cents for fee in fees)
    taxes = (Decimal(subtotal) * Decimal(tax_rate) / 100).quantize(
        Decimal(1), rounding=ROUND_HALF_UP
    )
    return subtotal, int(taxes)
