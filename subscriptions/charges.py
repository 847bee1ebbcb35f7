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


def validate_charge(
    charge_model: str, *, properties: Any, filters: Any, prorated: bool, metric: Any
) -> None:
    """Every rule of one charge on its metric (a BillableMetric), as one ValidationError
    keyed by the field at fault: the one rule set of the API, the admin and the services."""
    try:
        validate_properties(charge_model, properties, aggregation=metric.aggregation)
    except ValidationError as exc:
        raise ValidationError({"properties": exc.messages}) from exc
    try:
        validate_charge_filters(charge_model, filters or [], metric.filters)
    except ValidationError as exc:
        raise ValidationError({"filters": exc.messages}) from exc
    try:
        validate_prorated(
            charge_model,
            prorated=prorated,
            aggregation=metric.aggregation,
            recurring=metric.recurring,
        )
        validate_dimensions(
            filters=filters,
            properties=properties,
            prorated=prorated,
            aggregation=metric.aggregation,
            recurring=metric.recurring,
        )
    except ValidationError as exc:
        raise ValidationError({"prorated": exc.messages}) from exc


def validate_dimensions(
    *, filters: Any, properties: Any, prorated: bool, aggregation: str, recurring: bool
) -> None:
    """Filters and pricing groups split a period's usage in one query that neither carries
    a recurring metric's value over nor weights it by time: refused there (rather than
    rated wrong) until the buckets learn to."""
    grouped = isinstance(properties, dict) and bool(group_keys(properties))
    if not (filters or grouped):
        return
    if prorated or recurring or aggregation == "weighted_sum":
        raise ValidationError(
            "Filters and pricing_group_keys are not supported on a prorated charge, nor on "
            "a recurring or weighted_sum metric."
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
    # Lago's pricing_group_keys (grouped_by, its older name) go with any charge model.
    _group_keys(properties)
    _model_properties(charge_model, {k: v for k, v in properties.items() if k not in GROUP_KEYS})
    return properties


def _model_properties(charge_model: str, properties: dict[str, Any]) -> None:
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


# --- Pricing by dimension: Lago's metric filters, charge filters and pricing groups ---------
GROUP_KEYS = ("pricing_group_keys", "grouped_by")
# Lago's stand-in for "every value the metric declares for this key".
ALL_FILTER_VALUES = "__ALL_FILTER_VALUES__"
MAX_FILTER_KEYS = 20
MAX_FILTER_VALUES = 200
MAX_CHARGE_FILTERS = 200
MAX_GROUP_KEYS = 5


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise ValidationError(f"{field} must be a non-empty string of at most 255 characters.")
    return value


def _group_keys(properties: dict[str, Any]) -> None:
    for key in GROUP_KEYS:
        keys = properties.get(key)
        if keys is None:
            continue
        if not isinstance(keys, list) or len(keys) > MAX_GROUP_KEYS:
            raise ValidationError(f"{key} must be a list of at most {MAX_GROUP_KEYS} keys.")
        for index, item in enumerate(keys):
            _name(item, f"{key}[{index}]")
        if len(set(keys)) != len(keys):
            raise ValidationError(f"{key} lists a key twice.")


def group_keys(properties: dict[str, Any]) -> list[str]:
    """The event properties a charge (or filter) prices per distinct value: Lago reads
    `pricing_group_keys`, else the deprecated `grouped_by`."""
    return list(properties.get("pricing_group_keys") or properties.get("grouped_by") or [])


def validate_metric_filters(filters: Any) -> list[dict[str, Any]]:
    """A metric's filterable keys as Lago declares them: [{key, values: [str, ...]}]."""
    if not isinstance(filters, list) or len(filters) > MAX_FILTER_KEYS:
        raise ValidationError(f"filters must be a list of at most {MAX_FILTER_KEYS} keys.")
    keys = set()
    for index, item in enumerate(filters):
        where = f"filters[{index}]"
        if not isinstance(item, dict) or set(item) != {"key", "values"}:
            raise ValidationError(f"{where} must be an object with a key and its values.")
        keys.add(_name(item["key"], f"{where}.key"))
        values = item["values"]
        if not isinstance(values, list) or not values or len(values) > MAX_FILTER_VALUES:
            raise ValidationError(
                f"{where}.values must be a list of 1 to {MAX_FILTER_VALUES} strings."
            )
        for position, value in enumerate(values):
            _name(value, f"{where}.values[{position}]")
            if value == ALL_FILTER_VALUES:
                raise ValidationError(f"{where}.values[{position}] is reserved.")
        if len(set(values)) != len(values):
            raise ValidationError(f"{where}.values lists a value twice.")
    if len(keys) != len(filters):
        raise ValidationError("filters declare a key twice.")
    return filters


def validate_charge_filters(
    charge_model: str, filters: Any, metric_filters: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A charge's filters as Lago's: [{invoice_display_name, properties, values: {key:
    [value, ...]}}], each key one the metric declares and each value one of its values (or
    ALL_FILTER_VALUES alone), each filter priced by its own properties."""
    if not isinstance(filters, list) or len(filters) > MAX_CHARGE_FILTERS:
        raise ValidationError(f"filters must be a list of at most {MAX_CHARGE_FILTERS} filters.")
    declared = {item["key"]: set(item["values"]) for item in metric_filters}
    seen = set()
    for index, item in enumerate(filters):
        where = f"filters[{index}]"
        if not isinstance(item, dict) or not {"properties", "values"} <= set(item):
            raise ValidationError(f"{where} must be an object with properties and values.")
        unknown = set(item) - {"invoice_display_name", "properties", "values"}
        if unknown:
            raise ValidationError(f"{where} has unknown keys: {sorted(unknown)}.")
        if item.get("invoice_display_name") is not None:
            _name(item["invoice_display_name"], f"{where}.invoice_display_name")
        values = item["values"]
        if not isinstance(values, dict) or not values:
            raise ValidationError(f"{where}.values must map metric filter keys to values.")
        for key, chosen in values.items():
            if key not in declared:
                raise ValidationError(f"{where}.values: the metric declares no filter {key!r}.")
            if not isinstance(chosen, list) or not chosen:
                raise ValidationError(f"{where}.values.{key} must be a non-empty list.")
            if chosen == [ALL_FILTER_VALUES]:
                continue
            if not set(chosen) <= declared[key] or len(set(chosen)) != len(chosen):
                raise ValidationError(
                    f"{where}.values.{key} must list distinct values the metric declares "
                    f"for {key!r}."
                )
        signature = tuple(sorted((key, tuple(sorted(v))) for key, v in values.items()))
        if signature in seen:
            raise ValidationError(f"{where} repeats the values of an earlier filter.")
        seen.add(signature)
        try:
            validate_properties(charge_model, item["properties"])
        except ValidationError as exc:
            raise ValidationError([f"{where}.properties: {m}" for m in exc.messages]) from exc
    return filters


def expanded_values(
    values: dict[str, list[str]], metric_filters: list[dict[str, Any]]
) -> dict[str, list[str]]:
    """A filter's values with ALL_FILTER_VALUES replaced by every value the metric declares
    for that key (Lago's `to_h_with_all_values`)."""
    declared = {item["key"]: list(item["values"]) for item in metric_filters}
    return {
        key: declared.get(key, []) if chosen == [ALL_FILTER_VALUES] else list(chosen)
        for key, chosen in values.items()
    }


def filter_precedence(
    filters: list[dict[str, Any]], metric_filters: list[dict[str, Any]]
) -> list[tuple[int, dict[str, list[str]]]]:
    """(index, expanded values) of a charge's filters, the most specific first: an event
    counts for the first filter it matches, never for two.

    Lago's rules: the filter on more keys wins (EventMatchingService); on the same keys,
    one whose values are a subset of the other's wins, and of identical filters the older
    (ChargeFilters::MatchingAndIgnoredService). A subset has fewer values, so fewer values
    first says both; the remaining ties (filters that overlap without one containing the
    other, which Lago's aggregation would count twice) go to the earlier filter.
    """
    ranked = [
        (index, expanded_values(item["values"], metric_filters))
        for index, item in enumerate(filters)
    ]
    return sorted(
        ranked,
        key=lambda pair: (-len(pair[1]), sum(len(v) for v in pair[1].values()), pair[0]),
    )


def filter_display_name(item: dict[str, Any]) -> str:
    """A filter's name on an invoice: its invoice_display_name, else its values (a key
    for ALL_FILTER_VALUES), joined as Lago's ChargeFilter#display_name does."""
    if item.get("invoice_display_name"):
        return str(item["invoice_display_name"])
    parts: list[str] = []
    for key, chosen in item["values"].items():
        parts.extend([key] if chosen == [ALL_FILTER_VALUES] else chosen)
    return ", ".join(parts)
