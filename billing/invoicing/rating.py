"""The rating engine: from units (and events) to money, following Lago's charge models.

Pure and deterministic: Decimal throughout, and one half-up rounding to the currency's
minor unit per fee, at the end. Units are decimals (a `sum` can be fractional).

- standard: units * amount.
- graduated: each range prices the units that fall in it, plus its flat amount once the
  usage reaches it (ranges are written 0-10, 11-20, 21+: 10, 10 and the rest).
- volume: every unit at the price of the range the total falls in, plus that range's flat
  amount; no usage, no fee.
- package: units past `free_units`, in started packages of `package_size`, * amount.
- percentage: per event, `rate` % of its value plus `fixed_amount`, clamped to the
  per-transaction min/max; the first `free_units_per_events` events and the first
  `free_units_per_total_aggregation` of value are free.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

from core.iso import currency_exponent

ZERO = Decimal(0)

# A charge's properties and price ranges as Lago writes them (JSON, checked on the way in
# by subscriptions.charges.validate_properties): amounts are decimal strings.
Properties = Mapping[str, Any]
PriceRange = Mapping[str, Any]


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Major units (Decimal) to integer minor units, rounded half-up once."""
    exponent = currency_exponent(currency)
    return int((amount * (Decimal(10) ** exponent)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _units_in_range(units: Decimal, from_value: int, to_value: int | None) -> Decimal:
    lower = Decimal(from_value - 1 if from_value > 0 else 0)
    upper = units if to_value is None else min(units, Decimal(to_value))
    return max(ZERO, upper - lower)


def graduated(units: Decimal, ranges: Sequence[PriceRange]) -> Decimal:
    if units <= 0:
        return ZERO
    total = ZERO
    for item in ranges:
        in_range = _units_in_range(units, item["from_value"], item["to_value"])
        if in_range <= 0:
            break
        total += in_range * Decimal(item["per_unit_amount"]) + Decimal(item["flat_amount"])
    return total


def volume(units: Decimal, ranges: Sequence[PriceRange]) -> Decimal:
    if units <= 0:
        return ZERO
    for item in ranges:
        if item["to_value"] is None or units <= item["to_value"]:
            return units * Decimal(item["per_unit_amount"]) + Decimal(item["flat_amount"])
    return ZERO  # unreachable: the last range is open-ended


def package(units: Decimal, properties: Properties) -> Decimal:
    paid = units - Decimal(properties.get("free_units") or 0)
    if paid <= 0:
        return ZERO
    packages = (paid / Decimal(properties["package_size"])).to_integral_value(ROUND_CEILING)
    return packages * Decimal(properties["amount"])


def percentage(event_values: Sequence[Decimal], properties: Properties) -> Decimal:
    rate = Decimal(properties["rate"]) / 100
    fixed = Decimal(properties.get("fixed_amount") or 0)
    free_events = int(properties.get("free_units_per_events") or 0)
    free_value = Decimal(properties.get("free_units_per_total_aggregation") or 0)
    low = properties.get("per_transaction_min_amount")
    high = properties.get("per_transaction_max_amount")
    total = ZERO
    for index, value in enumerate(event_values):
        if index < free_events:
            continue
        covered = min(value, free_value)
        free_value -= covered
        amount = (value - covered) * rate + fixed
        if low is not None:
            amount = max(amount, Decimal(low))
        if high is not None:
            amount = min(amount, Decimal(high))
        total += amount
    return total


def charge_amount(
    *,
    charge_model: str,
    properties: Properties,
    units: Decimal,
    event_values: Sequence[Decimal] = (),
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
        return percentage(event_values, properties)
    raise ValueError(f"unknown charge model {charge_model!r}")


def charge_amount_cents(
    *,
    charge_model: str,
    properties: Properties,
    units: Decimal,
    currency: str,
    event_values: Sequence[Decimal] = (),
) -> int:
    return to_minor_units(
        charge_amount(
            charge_model=charge_model, properties=properties, units=units, event_values=event_values
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


@dataclass(frozen=True)
class ChargeUsage:
    """One charge of a plan, with the usage it prices over one stretch of time."""

    metric_code: str
    charge_model: str
    properties: dict[str, Any]
    units: Decimal
    event_values: Sequence[Decimal] = ()
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
