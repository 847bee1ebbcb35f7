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

from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from core.iso import currency_exponent

ZERO = Decimal(0)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Major units (Decimal) to integer minor units, rounded half-up once."""
    exponent = currency_exponent(currency)
    return int((amount * (Decimal(10) ** exponent)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _units_in_range(units: Decimal, from_value: int, to_value: int | None) -> Decimal:
    lower = Decimal(from_value - 1 if from_value > 0 else 0)
    upper = units if to_value is None else min(units, Decimal(to_value))
    return max(ZERO, upper - lower)


def graduated(units: Decimal, ranges: Sequence[dict]) -> Decimal:
    if units <= 0:
        return ZERO
    total = ZERO
    for item in ranges:
        in_range = _units_in_range(units, item["from_value"], item["to_value"])
        if in_range <= 0:
            break
        total += in_range * Decimal(item["per_unit_amount"]) + Decimal(item["flat_amount"])
    return total


def volume(units: Decimal, ranges: Sequence[dict]) -> Decimal:
    if units <= 0:
        return ZERO
    for item in ranges:
        if item["to_value"] is None or units <= item["to_value"]:
            return units * Decimal(item["per_unit_amount"]) + Decimal(item["flat_amount"])
    return ZERO  # unreachable: the last range is open-ended


def package(units: Decimal, properties: dict) -> Decimal:
    paid = units - Decimal(properties.get("free_units") or 0)
    if paid <= 0:
        return ZERO
    packages = (paid / Decimal(properties["package_size"])).to_integral_value(ROUND_CEILING)
    return packages * Decimal(properties["amount"])


def percentage(event_values: Sequence[Decimal], properties: dict) -> Decimal:
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
    properties: dict,
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
    properties: dict,
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
