"""Validation of charge properties, shaped as in Lago's spec.

Prices are decimal strings ("0.0025"), never floats; ranges start at 0, are contiguous
(each `from_value` is the previous `to_value` + 1... as Lago writes them) and the last one
is open-ended. The same checks serve the API, the admin and overrides.
"""

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from core.limits import (
    MAX_FLAT_AMOUNT,
    MAX_RANGES,
    MAX_UNIT_PRICE,
    MAX_UNITS_INTEGER,
    MAX_USAGE_VALUE,
    decimal_problem,
)


def _decimal(
    value: Any, field: str, *, required: bool = True, limit: Decimal = MAX_UNIT_PRICE
) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str):
        raise ValidationError(f'{field} must be a decimal string, e.g. "0.25".')
    if len(value) > 100:  # no price we accept needs more; parsing more costs time
        raise ValidationError(f"{field} is too long for a decimal.")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValidationError(f"{field} is not a decimal: {value!r}.") from None
    # Bounded so that any accepted price times any accepted usage value rates without a
    # Decimal overflow and fits a bigint of minor units (core.limits).
    problem = decimal_problem(number, limit=limit)
    if problem:
        raise ValidationError(f"{field} {problem}.")


def _int(value: Any, field: str, *, minimum: int = 0, required: bool = True) -> None:
    if value is None and not required:
        return
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not minimum <= value <= MAX_UNITS_INTEGER
    ):
        raise ValidationError(f"{field} must be an integer from {minimum} to {MAX_UNITS_INTEGER}.")


def _ranges(ranges: Any, field: str, amount_keys: tuple[str, ...]) -> None:
    if not isinstance(ranges, list) or not ranges:
        raise ValidationError(f"{field} must be a non-empty list of ranges.")
    if len(ranges) > MAX_RANGES:  # each range adds a flat amount to the fee
        raise ValidationError(f"{field} has more than {MAX_RANGES} ranges.")
    expected_from = 0
    for index, item in enumerate(ranges):
        where = f"{field}[{index}]"
        if not isinstance(item, dict):
            raise ValidationError(f"{where} must be an object.")
        _int(item.get("from_value"), f"{where}.from_value")
        if item["from_value"] != expected_from:
            raise ValidationError(
                f"{where}.from_value must be {expected_from}: ranges start at 0 and are contiguous."
            )
        last = index == len(ranges) - 1
        to_value = item.get("to_value")
        if last:
            if to_value is not None:
                raise ValidationError(f"{where}.to_value must be null: the last range is open.")
        else:
            _int(to_value, f"{where}.to_value")
            assert to_value is not None  # _int refused it otherwise
            if to_value <= item["from_value"]:
                raise ValidationError(f"{where}.to_value must be above from_value.")
            expected_from = to_value + 1
        for key in amount_keys:
            limit = MAX_FLAT_AMOUNT if key == "flat_amount" else MAX_UNIT_PRICE
            _decimal(item.get(key), f"{where}.{key}", limit=limit)
        unknown = set(item) - {"from_value", "to_value", *amount_keys}
        if unknown:
            raise ValidationError(f"{where} has unknown keys: {sorted(unknown)}.")


def _only(properties: dict[str, Any], allowed: set[str], model: str) -> None:
    unknown = set(properties) - allowed
    if unknown:
        raise ValidationError(f"{model} properties do not take {sorted(unknown)}.")


def validate_properties(charge_model: str, properties: Any) -> dict[str, Any]:
    """Raise ValidationError unless `properties` are valid for `charge_model`."""
    if not isinstance(properties, dict):
        raise ValidationError("properties must be an object.")
    if charge_model == "standard":
        _only(properties, {"amount"}, charge_model)
        _decimal(properties.get("amount"), "amount")
    elif charge_model == "graduated":
        _only(properties, {"graduated_ranges"}, charge_model)
        _ranges(
            properties.get("graduated_ranges"),
            "graduated_ranges",
            ("per_unit_amount", "flat_amount"),
        )
    elif charge_model == "volume":
        _only(properties, {"volume_ranges"}, charge_model)
        _ranges(
            properties.get("volume_ranges"), "volume_ranges", ("per_unit_amount", "flat_amount")
        )
    elif charge_model == "package":
        _only(properties, {"amount", "package_size", "free_units"}, charge_model)
        _decimal(properties.get("amount"), "amount")
        _int(properties.get("package_size"), "package_size", minimum=1)
        _int(properties.get("free_units", 0), "free_units")
    elif charge_model == "percentage":
        allowed = {
            "rate",
            "fixed_amount",
            "free_units_per_events",
            "free_units_per_total_aggregation",
            "per_transaction_min_amount",
            "per_transaction_max_amount",
        }
        _only(properties, allowed, charge_model)
        _decimal(properties.get("rate"), "rate", limit=Decimal(100))
        if Decimal(properties["rate"]) > 100:
            raise ValidationError("rate is a percentage: at most 100.")
        # Per event amounts, priced like a unit; the free allowance is counted in units.
        for key in ("fixed_amount", "per_transaction_min_amount", "per_transaction_max_amount"):
            _decimal(properties.get(key), key, required=False)
        _decimal(
            properties.get("free_units_per_total_aggregation"),
            "free_units_per_total_aggregation",
            required=False,
            limit=MAX_USAGE_VALUE,
        )
        _int(properties.get("free_units_per_events"), "free_units_per_events", required=False)
        low, high = (
            properties.get("per_transaction_min_amount"),
            properties.get("per_transaction_max_amount"),
        )
        if low is not None and high is not None and Decimal(low) > Decimal(high):
            raise ValidationError("per_transaction_min_amount is above the max.")
    else:
        raise ValidationError(f"unknown charge model {charge_model!r}.")
    return properties
