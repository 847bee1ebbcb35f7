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
        # Zero units: the first range's flat amount (Lago: graduated_service_spec.rb).
        ("graduated", {"graduated_ranges": RANGES}, D(0), (), 200),
        ("graduated", {"graduated_ranges": RANGES}, D(5), (), 700),  # 5*1 + 2
        ("graduated", {"graduated_ranges": RANGES}, D(15), (), 1750),  # 10+2 + 5*0.5+3
        ("graduated", {"graduated_ranges": RANGES}, D(25), (), 2050),  # 12 + 8 + 5*0.1
        ("volume", {"volume_ranges": RANGES}, D(15), (), 1050),  # 15*0.5 + 3
        ("volume", {"volume_ranges": RANGES}, D(0), (), 200),  # volume_service_spec.rb
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
    for index, item in enumerate(RANGES):
        lower = D(item["from_value"] - 1 if item["from_value"] else 0)
        upper = units if item["to_value"] is None else min(units, D(item["to_value"]))
        inside = max(D(0), upper - lower)
        if inside > 0 or index == 0:  # the first range is always reached
            tiers += inside * D(item["per_unit_amount"]) + D(item["flat_amount"])
    assert graduated(units, RANGES) == tiers


ADJACENT_RANGES = [
    {"from_value": 0, "to_value": 0.1, "per_unit_amount": "10", "flat_amount": "1"},
    {"from_value": 0.1, "to_value": 1, "per_unit_amount": "5", "flat_amount": "2"},
    {"from_value": 1, "to_value": None, "per_unit_amount": "2", "flat_amount": "0"},
]
PERCENTAGE_RANGES = [
    {"from_value": 0, "to_value": 10, "rate": "1", "flat_amount": "2"},
    {"from_value": 11, "to_value": 20.5, "rate": "2", "flat_amount": "3"},
    {"from_value": 21.5, "to_value": None, "rate": "3", "flat_amount": "4"},
]


@given(units_strategy, units_strategy)
def test_more_usage_never_costs_less(a, b):
    """Volume is left out: crossing into a cheaper range can lower the fee, by design."""
    low, high = sorted((a, b))
    for model, properties in (
        ("standard", {"amount": "0.01"}),
        ("graduated", {"graduated_ranges": RANGES}),
        ("graduated", {"graduated_ranges": ADJACENT_RANGES}),
        ("graduated_percentage", {"graduated_percentage_ranges": PERCENTAGE_RANGES}),
        ("package", {"amount": "5", "package_size": 7, "free_units": 3}),
        ("percentage", {"rate": "2.5", "fixed_amount": "0.1"}),
    ):
        assert charge_amount(charge_model=model, properties=properties, units=low) <= (
            charge_amount(charge_model=model, properties=properties, units=high)
        )
    # dynamic: more of the events' own amount never costs less.
    assert charge_amount(
        charge_model="dynamic", properties={}, units=D(1), precise_total_amount_cents=low
    ) <= charge_amount(
        charge_model="dynamic", properties={}, units=D(1), precise_total_amount_cents=high
    )


values_strategy = st.lists(
    st.decimals(min_value=0, max_value=10**4, places=2, allow_nan=False), max_size=8
)


@given(
    values=values_strategy,
    extra=st.decimals(min_value=0, max_value=10**4, places=2, allow_nan=False),
    aggregation=st.sampled_from(["sum", "count", "max", "unique_count"]),
    free_events=st.sampled_from([None, 1, 2, 5]),
    free_total=st.sampled_from([None, "0", "50", "500.5"]),
    clamp=st.sampled_from([(None, None), ("1.75", None), (None, "12"), ("0.5", "3")]),
    fixed=st.sampled_from([None, "0", "0.3"]),
)
def test_one_more_event_never_costs_less(
    values, extra, aggregation, free_events, free_total, clamp, fixed
):
    """Percentage, Lago's way (percentage_service.rb), on any aggregation it takes: an
    event more at the end of the period never lowers the fee."""
    properties = {
        "rate": "2.5",
        "fixed_amount": fixed,
        "free_units_per_events": free_events,
        "free_units_per_total_aggregation": free_total,
        "per_transaction_min_amount": clamp[0],
        "per_transaction_max_amount": clamp[1],
    }

    def fee(events):
        if aggregation == "sum":
            units = sum(events, D(0))
        elif aggregation == "max":
            units = max(events, default=D(0))
        else:  # each event a new unique value, or counted
            units = D(len(events))
        return charge_amount(
            charge_model="percentage",
            properties=properties,
            units=units,
            event_values=events,
            aggregation=aggregation,
        )

    assert fee([*values, extra]) >= fee(values)


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
