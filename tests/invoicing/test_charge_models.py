"""Charge models rated as Lago rates them (lago-api app/services/charge_models/*.rb), each
case from Lago's own spec where it has one, in hand-computed cents (USD unless said)."""

from decimal import Decimal as D

import pytest

from billing.invoicing.rating import charge_amount_cents

# spec/services/charge_models/graduated_service_spec.rb
GRADUATED = [
    {"from_value": 0, "to_value": 10, "per_unit_amount": "10", "flat_amount": "2"},
    {"from_value": 11, "to_value": 20, "per_unit_amount": "5", "flat_amount": "3"},
    {"from_value": 21, "to_value": None, "per_unit_amount": "5", "flat_amount": "3"},
]
# graduated_service_spec.rb "with decimal adjacent ranges"
ADJACENT = [
    {"from_value": 0, "to_value": 0.1, "per_unit_amount": "10", "flat_amount": "0"},
    {"from_value": 0.1, "to_value": 1, "per_unit_amount": "5", "flat_amount": "0"},
    {"from_value": 1, "to_value": None, "per_unit_amount": "2", "flat_amount": "0"},
]
# spec/services/charge_models/volume_service_spec.rb
VOLUME = [
    {"from_value": 0, "to_value": 100, "per_unit_amount": "2", "flat_amount": "10"},
    {"from_value": 101, "to_value": 200, "per_unit_amount": "1", "flat_amount": "0"},
    {"from_value": 201, "to_value": None, "per_unit_amount": "0.5", "flat_amount": "50"},
]
# spec/services/charge_models/graduated_percentage_service_spec.rb
GRADUATED_PERCENTAGE = [
    {"from_value": 0, "to_value": 10, "rate": "1", "flat_amount": "200"},
    {"from_value": 11, "to_value": 20, "rate": "2", "flat_amount": "300"},
    {"from_value": 21, "to_value": None, "rate": "3", "flat_amount": "400"},
]


def cents(model, properties, units, events=(), aggregation="sum", amount_cents=D(0), cur="USD"):
    return charge_amount_cents(
        charge_model=model,
        properties=properties,
        units=D(units),
        currency=cur,
        event_values=[D(v) for v in events],
        aggregation=aggregation,
        precise_total_amount_cents=D(amount_cents),
    )


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ("0", 200),  # "when aggregation is 0": the first range's flat amount, 2
        ("1", 1200),  # 1 * 10 + 2
        ("10", 10200),  # 10 * 10 + 2
        ("11", 11000),  # 102 + (1 * 5 + 3)
        ("12", 11500),  # 102 + (2 * 5 + 3)
        ("21", 16300),  # 102 + 53 + (1 * 5 + 3)
        ("10.5", 10750),  # 102 + (0.5 * 5 + 3): a fraction past 10 reaches the next range
    ],
)
def test_graduated(units, expected):
    """graduated_service.rb / graduated_service_spec.rb: each range reached adds its flat
    amount, and the first is reached even at zero units."""
    assert cents("graduated", {"graduated_ranges": GRADUATED}, units) == expected


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ("0", 0),
        ("0.05", 50),  # 0.05 * 10
        ("0.5", 300),  # 0.1 * 10 + 0.4 * 5
        ("2", 750),  # 0.1 * 10 + 0.9 * 5 + 1 * 2
    ],
)
def test_graduated_decimal_adjacent_ranges(units, expected):
    """graduated_service_spec.rb "with decimal adjacent ranges" (0-0.1, 0.1-1, 1+): each
    range starts at the previous to_value, so no unit is counted twice."""
    assert cents("graduated", {"graduated_ranges": ADJACENT}, units) == expected


def test_graduated_decimal_bounds_one_past():
    """RangeGraduatedService with from_value = previous to_value + 1 and decimal bounds
    (0-0.5, 1.5+): a range starts where the previous one ended (0.5).
    1.2 units: 0.5 * 10 + (1.2 - 1.5 + 1) * 1 = 5 + 0.7."""
    ranges = [
        {"from_value": 0, "to_value": 0.5, "per_unit_amount": "10", "flat_amount": "0"},
        {"from_value": 1.5, "to_value": None, "per_unit_amount": "1", "flat_amount": "0"},
    ]
    assert cents("graduated", {"graduated_ranges": ranges}, "1.2") == 570


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ("0", 1000),  # "when aggregation is 0": the first range's flat amount, 10
        ("1", 1200),  # 1 * 2 + 10
        ("100", 21000),  # 100 * 2 + 10
        ("100.5", 10050),  # ceil(100.5) = 101 >= 101: the second range, 100.5 * 1
        ("201", 15050),  # 201 * 0.5 + 50
    ],
)
def test_volume(units, expected):
    """volume_service.rb / volume_service_spec.rb: the range the total falls in (found by
    from_value <= ceil(units) <= ... <= to_value) prices every unit, plus its flat amount,
    which is due at zero units too."""
    assert cents("volume", {"volume_ranges": VOLUME}, units) == expected


def test_volume_first_flat_zero_is_free_at_zero_units():
    """volume_service_spec.rb "when first tier flat amount is zero": 0."""
    ranges = [
        {"from_value": 0, "to_value": 1, "per_unit_amount": "0", "flat_amount": "0"},
        {"from_value": 2, "to_value": None, "per_unit_amount": "2", "flat_amount": "10"},
    ]
    assert cents("volume", {"volume_ranges": ranges}, "0") == 0


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ("0", 20000),  # the first range's flat amount, 200
        ("1", 20001),  # 200 + 1 * 1%
        ("10", 20010),  # 200 + 10 * 1%
        ("21", 90033),  # (200 + 10 * 1%) + (300 + 10 * 2%) + (400 + 1 * 3%)
    ],
)
def test_graduated_percentage(units, expected):
    """graduated_percentage_service.rb / RangeGraduatedPercentageService and
    graduated_percentage_service_spec.rb: a rate per range on the units in it, plus each
    reached range's flat amount (the first even at zero units)."""
    properties = {"graduated_percentage_ranges": GRADUATED_PERCENTAGE}
    assert cents("graduated_percentage", properties, units) == expected


@pytest.mark.parametrize(
    ("units", "amount_cents", "currency", "expected"),
    [
        ("20", "40.2", "USD", 40),  # dynamic_service_spec.rb: 0.402 -> 0.40
        ("0", "40.2", "USD", 0),  # "when aggregation is zero"
        ("3", "1234.56", "USD", 1235),  # 12.3456 -> 12.35
        ("3", "1234.5", "JPY", 1235),  # no minor unit: 1234.5 -> 1235
    ],
)
def test_dynamic(units, amount_cents, currency, expected):
    """dynamic_service.rb: the sum of the events' precise_total_amount_cents over the
    currency's subunit, nothing when the units are zero."""
    assert cents("dynamic", {}, units, amount_cents=amount_cents, cur=currency) == expected


# --- percentage: percentage_service.rb / percentage_service_spec.rb --------------------
# The spec's aggregation: 4 events, sum 800; their running total over the first 3 events
# is [50, 150, 400], which these values give.
EVENTS = ["50", "100", "250", "400"]
BASE = {"rate": "1.3", "fixed_amount": "2.0"}


@pytest.mark.parametrize(
    ("free", "expected"),
    [
        # both: free value min(400, 250) = 250; free events min(3, 2 under 250) = 2
        # (800 - 250) * 1.3% + (4 - 2) * 2 = 7.15 + 4
        ({"free_units_per_events": 3, "free_units_per_total_aggregation": "250.0"}, 1115),
        # "when free_units_per_events is nil": the same, 11.15
        ({"free_units_per_total_aggregation": "250.0"}, 1115),
        # "when free_units_per_total_aggregation is nil": (800 - 400) * 1.3% + 1 * 2
        ({"free_units_per_events": 3}, 720),
        # "when free units are not set": 800 * 1.3% + 4 * 2
        ({}, 1840),
        # "free_units_per_total_aggregation > last running total": 400 free, 3 events
        ({"free_units_per_events": 3, "free_units_per_total_aggregation": "500.0"}, 720),
        # "when free_units_count > number of events": nothing
        ({"free_units_per_events": 5}, 0),
        # Whichever limit comes first: 3 events or 100 of value. 100 comes first (in the
        # 2nd event): free value 100, free events 1 (the one under 100).
        # (800 - 100) * 1.3% + (4 - 1) * 2 = 9.1 + 6
        ({"free_units_per_events": 3, "free_units_per_total_aggregation": "100"}, 1510),
        # ... 1 event comes first: free value min(50, 1000) = 50, 1 free event.
        # (800 - 50) * 1.3% + 3 * 2 = 9.75 + 6
        ({"free_units_per_events": 1, "free_units_per_total_aggregation": "1000"}, 1575),
    ],
)
def test_percentage_free_allowances(free, expected):
    """Without a per-transaction min/max, the free allowance ends at whichever of
    free_units_per_events and free_units_per_total_aggregation is reached first
    (free_units_value, free_units_count), and the fixed fee is charged per paid event."""
    events = EVENTS if free.get("free_units_per_events") != 5 else ["50", "150", "200"]
    units = sum(D(v) for v in events)
    assert cents("percentage", {**BASE, **free}, units, events) == expected


# "when applying min / max amount per transaction" (premium): events 10, 80, 10000.
MINMAX_EVENTS = ["10", "80", "10000"]
MINMAX = {"rate": "2.99", "per_transaction_min_amount": "1.75", "per_transaction_max_amount": "12"}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, 1614),  # 1.75 (min: 0.299) + 2.392 + 12 (max) = 16.142
        ({"fixed_amount": "2.0"}, 1869),  # 2.299 + 4.392 + 12 = 18.691
        ({"free_units_per_events": 2}, 1200),  # only the third pays: 12 (max)
        ({"free_units_per_total_aggregation": "30"}, 1379),  # 10 free; (80-20) * 2.99% + 12
        # The free amount governs once set: 10 and 80 free, then (10000 - 9910) * 2.99%
        (
            {"free_units_per_events": 3, "free_units_per_total_aggregation": "10000"},
            269,
        ),
        # An event the free amount covers whole pays no fixed fee and no minimum:
        # 10 free; (60 * 2.99% + 2) = 3.794; 12 (max) = 15.794
        ({"fixed_amount": "2", "free_units_per_total_aggregation": "30"}, 1579),
    ],
)
def test_percentage_per_transaction(extra, expected):
    """compute_amount_with_transaction_min_max: event by event; free events and a free
    amount cover events whole (no fee, no minimum), then rate + fixed fee, clamped."""
    units = sum(D(v) for v in MINMAX_EVENTS)
    assert cents("percentage", {**MINMAX, **extra}, units, MINMAX_EVENTS) == expected


def test_percentage_zero_units_charges_nothing():
    """percentage_service_spec.rb "when aggregation value is 0": no rate, no fixed fee."""
    assert cents("percentage", BASE, "0", ["0", "0"]) == 0


@pytest.mark.parametrize(
    ("aggregation", "units", "events", "properties", "expected"),
    [
        # count: 4 events are 4 units; 4 * 10% + 4 * 0.5 = 0.4 + 2
        ("count", "4", ["0"] * 4, {"rate": "10", "fixed_amount": "0.5"}, 240),
        # count, free: running total 1..5; first event free (1 unit), free events
        # min(1, 1 under 2) = 1: (5 - 1) * 10% + 4 * 0.5 = 0.4 + 2
        (
            "count",
            "5",
            ["0"] * 5,
            {
                "rate": "10",
                "fixed_amount": "0.5",
                "free_units_per_events": 1,
                "free_units_per_total_aggregation": "2",
            },
            240,
        ),
        # count, per transaction: each event is 1 unit; 1 * 10% + 0.5 -> min 1, 4 times
        (
            "count",
            "4",
            ["0"] * 4,
            {"rate": "10", "fixed_amount": "0.5", "per_transaction_min_amount": "1"},
            400,
        ),
        # max: the rate on the max (30), a fixed fee per event: 3 + 3 * 1
        ("max", "30", ["10", "30", "20"], {"rate": "10", "fixed_amount": "1"}, 600),
        # max, per transaction: only the first max event carries a value: 1 (min 2) ->
        # 2, 3 + 1 = 4, 1 -> 2
        (
            "max",
            "30",
            ["10", "30", "20"],
            {"rate": "10", "fixed_amount": "1", "per_transaction_min_amount": "2"},
            800,
        ),
        # unique_count: 2 unique values of 3 events; count is the unique count:
        # 2 * 10% + 2 * 1
        ("unique_count", "2", ["0"] * 3, {"rate": "10", "fixed_amount": "1"}, 220),
        # unique_count, per transaction: one transaction of 1 unit per event: 3 * 1.1
        (
            "unique_count",
            "2",
            ["0"] * 3,
            {"rate": "10", "fixed_amount": "1", "per_transaction_max_amount": "5"},
            330,
        ),
    ],
)
def test_percentage_on_other_aggregations(aggregation, units, events, properties, expected):
    """percentage_service.rb on a non-sum metric: the rate applies to the metric's units
    (the aggregation result); fixed fees per counted event (a unique_count's count is its
    units: unique_count_service.rb); per-transaction rules on per_event_aggregation: 1 per
    event for count (count_service.rb) and unique_count, the first max for max
    (max_service.rb)."""
    assert cents("percentage", properties, units, events, aggregation) == expected
