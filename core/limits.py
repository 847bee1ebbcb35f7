"""Bounds on every number that becomes money, checked at the edge.

Chosen together so that anything accepted can be rated and stored: a usage value times
the largest unit price is at most 10^16 major units, 10^18 minor units (the largest
currency exponent we know is 2), inside PostgreSQL's bigint (9.2 * 10^18) with room for
the flat amounts; a usage value fits the column (numeric(38, 12)); and no Decimal
operation in rating can overflow its context (Emax 999999), which "1e999999" did.
"""

from decimal import Decimal

# One event's value: a trillion units (tokens, bytes, calls) is beyond any single event.
MAX_USAGE_VALUE = Decimal(10) ** 12
# A price per unit (or per package) in major units.
MAX_UNIT_PRICE = Decimal(10) ** 4
# A flat or fixed amount, or a per-transaction clamp, in major units: 10^12 minor units,
# the same bound as a plan's fixed fee.
MAX_FLAT_AMOUNT = Decimal(10) ** 10
# numeric(38, 12) keeps 12 decimal places; more would be silently rounded away.
MAX_DECIMAL_PLACES = 12
# Range bounds, package sizes and free units.
MAX_UNITS_INTEGER = 10**12
# One event's own amount (a dynamic charge), in minor units: the same bound as a flat
# amount, 10^12 minor units.
MAX_EVENT_AMOUNT_CENTS = Decimal(10) ** 12
# Price ranges per charge: each adds a flat amount to the fee.
MAX_RANGES = 100
# A plan's fixed fee (and a subscription's override of it), in minor units: above a
# trillion is a typo, and it keeps every sum inside a bigint.
MAX_FEE_CENTS = 10**12
# A plan's trial, in days (ten years).
MAX_TRIAL_DAYS = 3650
# Keys of a customer's free-form metadata.
MAX_METADATA_KEYS = 50

_QUANTUM = Decimal(1).scaleb(-MAX_DECIMAL_PLACES)


def decimal_problem(number: Decimal, *, limit: Decimal, negative: bool = False) -> str | None:
    """Why `number` cannot be accepted, or None. `limit` bounds its absolute value."""
    if not number.is_finite():
        return "must be a finite number (not NaN or Infinity)"
    if number < 0 and not negative:
        return "must not be negative"
    # copy_abs, not abs(): abs() rounds in the context and overflows on "1e999999999".
    if number.copy_abs() > limit:
        return f"must be at most {limit:,.0f} in absolute value"
    if number != number.quantize(_QUANTUM):
        return f"must have at most {MAX_DECIMAL_PLACES} decimal places"
    return None
