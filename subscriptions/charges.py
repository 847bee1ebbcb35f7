"""Validation of charge properties, shaped as in Lago's spec.

Prices are decimal strings ("0.0025"), never floats; ranges start at 0, are contiguous
(each `from_value` is the previous `to_value` + 1, or for graduated ranges all equal to
it, as Lago writes them; bounds may be decimals such as 0.1 except for volume) and the
last one is open-ended. The same checks serve the API, the admin and overrides.

Also the check of a subscription's override of the plan's minimum commitment.
"""

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from core.limits import (
    MAX_FEE_CENTS,
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


def _bound(value: Any, field: str) -> Decimal:
    """A range bound: a JSON number, an integer or a decimal such as 0.1 (Lago compares
    bounds as BigDecimal(value.to_s)), as the decimal it was written as."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{field} must be a number.")
    number = Decimal(str(value))
    problem = decimal_problem(number, limit=Decimal(MAX_UNITS_INTEGER))
    if problem:
        raise ValidationError(f"{field} {problem}.")
    return number


# How a range follows the previous one (Lago's RangeBoundsValidator takes from_value =
# to_value or to_value + 1; we take the forms Lago also rates consistently):
# - "graduated": all one past the previous to_value (0-10, 11-20), or all adjacent
#   (0-0.1, 0.1-1): Lago counts units per range by adjacent_ranges?, all or nothing.
# - "inclusive": one past (graduated_percentage: Lago prices from_value..to_value inclusive,
#   so an adjacent boundary would be priced twice).
# - "volume": one past, integer bounds: Lago finds the range by ceil(units) >= from_value,
#   so a decimal bound would leave usage no range takes.
_STYLES = ("graduated", "inclusive", "volume")


def _ranges(ranges: Any, field: str, amount_keys: tuple[str, ...], style: str) -> None:
    assert style in _STYLES
    if not isinstance(ranges, list) or not ranges:
        raise ValidationError(f"{field} must be a non-empty list of ranges.")
    if len(ranges) > MAX_RANGES:  # each range adds a flat amount to the fee
        raise ValidationError(f"{field} has more than {MAX_RANGES} ranges.")
    previous_to: Decimal | None = None
    steps = set()
    for index, item in enumerate(ranges):
        where = f"{field}[{index}]"
        if not isinstance(item, dict):
            raise ValidationError(f"{where} must be an object.")
        from_value = _bound(item.get("from_value"), f"{where}.from_value")
        if style == "volume" and from_value != from_value.to_integral_value():
            raise ValidationError(f"{where}.from_value must be an integer for volume ranges.")
        if previous_to is None:
            if from_value != 0:
                raise ValidationError(f"{where}.from_value must be 0: ranges start at 0.")
        else:
            step = from_value - previous_to
            allowed = {Decimal(0), Decimal(1)} if style == "graduated" else {Decimal(1)}
            if step not in allowed:
                raise ValidationError(
                    f"{where}.from_value must be {previous_to + 1}"
                    + (f" or {previous_to}" if style == "graduated" else "")
                    + ": ranges are contiguous."
                )
            steps.add(step)
            if len(steps) > 1:
                raise ValidationError(
                    f"{where}.from_value: ranges either all start one past the previous "
                    "to_value or all at it, not both."
                )
        last = index == len(ranges) - 1
        to_value = item.get("to_value")
        if last:
            if to_value is not None:
                raise ValidationError(f"{where}.to_value must be null: the last range is open.")
        else:
            previous_to = _bound(to_value, f"{where}.to_value")
            if style == "volume" and previous_to != previous_to.to_integral_value():
                raise ValidationError(f"{where}.to_value must be an integer for volume ranges.")
            if previous_to <= from_value:
                raise ValidationError(f"{where}.to_value must be above from_value.")
        for key in amount_keys:
            limit = {"flat_amount": MAX_FLAT_AMOUNT, "rate": Decimal(100)}.get(key, MAX_UNIT_PRICE)
            _decimal(item.get(key), f"{where}.{key}", limit=limit)
        unknown = set(item) - {"from_value", "to_value", *amount_keys}
        if unknown:
            raise ValidationError(f"{where} has unknown keys: {sorted(unknown)}.")


def _only(properties: dict[str, Any], allowed: set[str], model: str) -> None:
    unknown = set(properties) - allowed
    if unknown:
        raise ValidationError(f"{model} properties do not take {sorted(unknown)}.")


# The aggregations each model can rate (Lago's Charge#validate_dynamic and the
# percentage validators' validate_billable_metric: no latest_agg).
_AGGREGATIONS = {
    "percentage": {"count", "sum", "max", "unique_count"},
    "graduated_percentage": {"count", "sum", "max", "unique_count"},
    "dynamic": {"sum"},
}


# charge.rb validate_prorated: Lago prorates standard, volume and graduated charges (in
# arrears) on recurring sum or unique_count metrics. Ours rates the prorated units with
# the standard model only so far; volume and graduated need Lago's full-units tier choice
# and per-event ranges (prorated_graduated_service.rb), refused rather than rated wrong.
PRORATED_CHARGE_MODELS = frozenset({"standard"})
PRORATED_AGGREGATIONS = frozenset({"sum", "unique_count"})


def validate_prorated(
    charge_model: str, *, prorated: bool, aggregation: str, recurring: bool
) -> None:
    """Raise ValidationError unless a charge may be prorated (Lago's rules, narrowed to
    the models we rate prorated)."""
    if not prorated:
        return
    if aggregation not in PRORATED_AGGREGATIONS or not recurring:
        raise ValidationError(
            "A prorated charge needs a recurring sum or unique_count metric "
            f"(not a{' recurring' if recurring else ''} {aggregation} one)."
        )
    if charge_model not in PRORATED_CHARGE_MODELS:
        raise ValidationError(
            f"A {charge_model} charge cannot be prorated here yet: only standard is."
        )


def validate_properties(
    charge_model: str, properties: Any, *, aggregation: str | None = None
) -> dict[str, Any]:
    """Raise ValidationError unless `properties` are valid for `charge_model` (and the
    charge's metric, by its `aggregation`, when given)."""
    if not isinstance(properties, dict):
        raise ValidationError("properties must be an object.")
    allowed_aggregations = _AGGREGATIONS.get(charge_model)
    if aggregation is not None and allowed_aggregations and aggregation not in allowed_aggregations:
        raise ValidationError(
            f"A {charge_model} charge needs a metric aggregated by "
            f"{' or '.join(sorted(allowed_aggregations))}, not {aggregation}."
        )
    if charge_model == "standard":
        _only(properties, {"amount"}, charge_model)
        _decimal(properties.get("amount"), "amount")
    elif charge_model == "graduated":
        _only(properties, {"graduated_ranges"}, charge_model)
        _ranges(
            properties.get("graduated_ranges"),
            "graduated_ranges",
            ("per_unit_amount", "flat_amount"),
            "graduated",
        )
    elif charge_model == "volume":
        _only(properties, {"volume_ranges"}, charge_model)
        _ranges(
            properties.get("volume_ranges"),
            "volume_ranges",
            ("per_unit_amount", "flat_amount"),
            "volume",
        )
    elif charge_model == "graduated_percentage":
        _only(properties, {"graduated_percentage_ranges"}, charge_model)
        _ranges(
            properties.get("graduated_percentage_ranges"),
            "graduated_percentage_ranges",
            ("rate", "flat_amount"),
            "inclusive",
        )
    elif charge_model == "dynamic":
        # The amounts come with the events (precise_total_amount_cents).
        _only(properties, set(), charge_model)
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
        # Lago refuses 0 (Charges::Validators::PercentageService: a positive integer).
        _int(
            properties.get("free_units_per_events"),
            "free_units_per_events",
            minimum=1,
            required=False,
        )
        low, high = (
            properties.get("per_transaction_min_amount"),
            properties.get("per_transaction_max_amount"),
        )
        if low is not None and high is not None and Decimal(low) > Decimal(high):
            raise ValidationError("per_transaction_min_amount is above the max.")
    else:
        raise ValidationError(f"unknown charge model {charge_model!r}.")
    return properties


# --- A subscription's override of the plan's minimum commitment (Lago's) ----------------
COMMITMENT_OVERRIDE_KEYS = frozenset({"amount_cents", "invoice_display_name"})


def checked_commitment_override(overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides, their `minimum_commitment` (if any) checked: Lago's
    MinimumCommitmentInput, {amount_cents (above zero), invoice_display_name}. The plan's
    own commitment is two fields of the plan; its true-up is rated by
    billing.invoicing.rating.commitment_true_ups."""
    if "minimum_commitment" not in overrides:
        return overrides
    commitment = overrides["minimum_commitment"]
    if not isinstance(commitment, dict) or set(commitment) - COMMITMENT_OVERRIDE_KEYS:
        raise ValidationError(
            {"overrides": "minimum_commitment takes amount_cents and invoice_display_name."}
        )
    amount = commitment.get("amount_cents")
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= MAX_FEE_CENTS:
        raise ValidationError(
            {
                "overrides": "minimum_commitment.amount_cents must be an integer from 1 to "
                f"{MAX_FEE_CENTS}."
            }
        )
    name = commitment.get("invoice_display_name", "")
    if not isinstance(name, str) or len(name) > 255:
        raise ValidationError(
            {"overrides": "minimum_commitment.invoice_display_name must be text (255 at most)."}
        )
    return overrides
