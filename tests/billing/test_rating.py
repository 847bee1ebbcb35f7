"""The rating engine against hand computations, and its invariants (hypothesis)."""

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.rating import charge_amount, charge_amount_cents, graduated, to_minor_units

RANGES = [
    {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "2"},
    {"from_value": 11, "to_value": 20, "per_unit_amount": "0.5", "flat_amount": "3"},
    {"from_value": 21, "to_value": None, "per_unit_amount": "0.1", "flat_amount": "0"},
]


@pytest.mark.parametrize(
    ("model", "properties", "units", "events", "cents"),
    [
        ("standard", {"amount": "0.002"}, D(1234), (), 247),  # 2.468 -> 2.47
        ("graduated", {"graduated_ranges": RANGES}, D(0), (), 0),
        ("graduated", {"graduated_ranges": RANGES}, D(5), (), 700),  # 5*1 + 2
        ("graduated", {"graduated_ranges": RANGES}, D(15), (), 1750),  # 10+2 + 5*0.5+3
        ("graduated", {"graduated_ranges": RANGES}, D(25), (), 2050),  # 12 + 8 + 5*0.1
        ("volume", {"volume_ranges": RANGES}, D(15), (), 1050),  # 15*0.5 + 3
        ("volume", {"volume_ranges": RANGES}, D(0), (), 0),
        ("package", {"amount": "5", "package_size": 100, "free_units": 50}, D(50), (), 0),
        ("package", {"amount": "5", "package_size": 100, "free_units": 50}, D(151), (), 1000),
        (
            "percentage",
            {
                "rate": "2.5",
                "fixed_amount": "0.1",
                "free_units_per_events": 1,
                "per_transaction_max_amount": "1",
            },
            D(220),
            (D(100), D(100), D(20)),
            160,
        ),  # free; 2.5+0.1 -> 1 (max); 0.5+0.1
    ],
)
def test_hand_computed_fees(model, properties, units, events, cents):
    assert (
        charge_amount_cents(
            charge_model=model,
            properties=properties,
            units=units,
            currency="USD",
            event_values=events,
        )
        == cents
    )


def test_currency_exponents():
    assert to_minor_units(D("1.005"), "USD") == 101  # half-up, not banker's
    assert to_minor_units(D("1234.5"), "JPY") == 1235


units_strategy = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False)


@given(units_strategy)
def test_graduated_is_the_sum_of_its_tiers(units):
    tiers = D(0)
    for item in RANGES:
        lower = D(item["from_value"] - 1 if item["from_value"] else 0)
        upper = units if item["to_value"] is None else min(units, D(item["to_value"]))
        inside = max(D(0), upper - lower)
        if inside > 0:
            tiers += inside * D(item["per_unit_amount"]) + D(item["flat_amount"])
    assert graduated(units, RANGES) == tiers


@given(units_strategy, units_strategy)
def test_more_usage_never_costs_less(a, b):
    low, high = sorted((a, b))
    for model, properties in (
        ("standard", {"amount": "0.01"}),
        ("graduated", {"graduated_ranges": RANGES}),
        ("package", {"amount": "5", "package_size": 7, "free_units": 3}),
    ):
        assert charge_amount(charge_model=model, properties=properties, units=low) <= (
            charge_amount(charge_model=model, properties=properties, units=high)
        )
