"""The rating engine against hand computations, and its invariants (hypothesis)."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.invoicing.rating import (
    ChargeUsage,
    PeriodInput,
    PhaseUsage,
    charge_amount,
    charge_amount_cents,
    graduated,
    invoice_totals,
    prorate_cents,
    rate_period,
    to_minor_units,
)

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


# --- Periods: proration and totals -----------------------------------------------------

MONTH_START = datetime(2026, 10, 1, tzinfo=UTC)
MONTH_END = datetime(2026, 11, 1, tzinfo=UTC)


@given(
    amount=st.integers(min_value=0, max_value=10**10),
    cuts=st.lists(st.integers(min_value=1, max_value=31 * 86400 - 1), max_size=1, unique=True),
)
def test_prorated_pieces_add_up_to_the_whole_within_one_minor_unit(amount, cuts):
    whole = MONTH_END - MONTH_START
    bounds = [0, *sorted(cuts), int(whole.total_seconds())]
    pieces = [
        prorate_cents(amount_cents=amount, part=timedelta(seconds=b - a), whole=whole)
        for a, b in itertools.pairwise(bounds)
    ]
    assert abs(sum(pieces) - amount) <= 1


@given(
    amounts=st.lists(st.integers(min_value=0, max_value=10**8), min_size=1, max_size=3),
    split=st.integers(min_value=1, max_value=30),
    units=st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False),
    rate=st.decimals(min_value=0, max_value=100, places=2, allow_nan=False),
)
def test_the_total_is_the_sum_of_the_lines_plus_tax(amounts, split, units, rate):
    cut = MONTH_START + timedelta(days=split)
    phases = [
        PhaseUsage(
            plan_code=f"p{i}",
            plan_name=f"P{i}",
            amount_cents=amount,
            pay_in_advance=False,
            start=MONTH_START if i == 0 else cut,
            end=cut if i == 0 and len(amounts) > 1 else MONTH_END,
            charges=[
                ChargeUsage(
                    metric_code="calls",
                    charge_model="standard",
                    properties={"amount": "0.0125"},
                    units=units,
                )
            ],
        )
        for i, amount in enumerate(amounts[:2])
    ]
    fees = rate_period(
        PeriodInput(
            currency="USD",
            start=MONTH_START,
            end=MONTH_END,
            nominal_start=MONTH_START,
            nominal_end=MONTH_END,
            phases=phases,
        )
    )
    subtotal, taxes = invoice_totals(fees=fees, tax_rate=rate, currency="USD")
    assert subtotal == sum(fee.amount_cents for fee in fees)
    assert taxes == int((Decimal(subtotal) * rate / 100).quantize(Decimal(1), ROUND_HALF_UP))
    assert all(isinstance(fee.amount_cents, int) for fee in fees)
