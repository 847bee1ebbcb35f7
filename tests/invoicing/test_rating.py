"""The rating engine against hand computations, and its invariants (hypothesis)."""

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from decimal import Decimal as D

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from billing.invoicing.charge_models import (
    charge_amount,
    charge_amount_cents,
    graduated,
    to_minor_units,
)
from billing.invoicing.rating import (
    ChargeUsage,
    PeriodInput,
    PhaseUsage,
    prorate_days,
    rate_period,
)
from billing.invoicing.totals import totals_of

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
    event more at the end of the period never lowers the fee.

    Except a max with a per-transaction minimum or maximum, which Lago rates event by
    event on [first maximum, 0, 0, ...] (max_service.rb's per_event_aggregation): a new
    maximum moves the value to the last event, so the free amount covers the zeros before
    it instead and a minimum charged on a zero goes. Lago does the same; it is not a
    promise this service can make."""
    assume(not (aggregation == "max" and clamp != (None, None)))
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
    cuts=st.lists(st.integers(min_value=1, max_value=30), max_size=1, unique=True),
)
def test_prorated_pieces_add_up_to_the_whole_within_one_minor_unit(amount, cuts):
    whole = (MONTH_END - MONTH_START).days
    bounds = [0, *sorted(cuts), whole]
    pieces = [
        prorate_days(amount_cents=amount, days=b - a, whole=whole)
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
    totals = totals_of(fees=fees, tax_rate=rate)
    subtotal, taxes = totals.subtotal_amount_cents, totals.taxes_amount_cents
    assert subtotal == sum(fee.amount_cents for fee in fees)
    assert taxes == int((Decimal(subtotal) * rate / 100).quantize(Decimal(1), ROUND_HALF_UP))
    assert all(isinstance(fee.amount_cents, int) for fee in fees)


# --- Proration by days, as Lago ---------------------------------------------------------
# A quarter of 91 days (April to June 2026) at 910.00: 10.00 a day, so a day is 1000 cents
# and a difference of one day shows at once.
Q2_START = datetime(2026, 4, 1, tzinfo=UTC)
Q2_END = datetime(2026, 7, 1, tzinfo=UTC)
MAY_10_AFTERNOON = datetime(2026, 5, 10, 15, tzinfo=UTC)


def _quarterly(amount=91000, *, advance=False, ahead=False, start=Q2_START, end=Q2_END, code="q"):
    return PhaseUsage(
        plan_code=code,
        plan_name=code.upper(),
        amount_cents=amount,
        pay_in_advance=advance,
        start=start,
        end=end,
        charges=[],
        billed_ahead=ahead,
    )


def _q2(phases, end=Q2_END, ended_by="renewal", **extra):
    return PeriodInput(
        currency="EUR",
        start=Q2_START,
        end=end,
        nominal_start=Q2_START,
        nominal_end=Q2_END,
        phases=phases,
        ended_by=ended_by,
        **extra,
    )


def _fixed(fees):
    return [(fee.description, fee.amount_cents) for fee in fees if fee.fee_type == "subscription"]


def test_a_termination_bills_whole_days_with_the_termination_day():
    """Fees::SubscriptionService#terminated_amount: days from the period's start to
    terminated_at, rounded up (Utils::Datetime.date_diff_with_timezone), times the day's
    price (DatesService#single_day_price: amount / days in the period). April 1 to May 10,
    afternoon included: 40 days of 10.00, where elapsed seconds gave 39.625 days (396.25)."""
    phase = _quarterly(end=MAY_10_AFTERNOON)
    fees = rate_period(_q2([phase], end=MAY_10_AFTERNOON, ended_by="termination"))
    assert _fixed(fees) == [("Q in arrears", 40000)]


def test_an_upgrade_gives_its_day_to_the_new_plan():
    """Subscription#date_diff_with_timezone takes the upgrade day off the old plan, and
    Fees::SubscriptionService#upgraded_amount bills it on the new one: 39 days of 10.00 on
    the old plan, May 10 to June 30 (52 days) of 20.00 on the new one; 91 days in all."""
    old = _quarterly(end=MAY_10_AFTERNOON)
    new = _quarterly(182000, start=MAY_10_AFTERNOON, code="big")
    assert _fixed(rate_period(_q2([old, new]))) == [
        ("Q in arrears", 39000),
        ("BIG in arrears", 104000),
    ]


def test_a_start_bills_from_its_own_day():
    """DatesService#from_datetime is the beginning of the start's day, so a start at
    15:00 on May 10 bills May 10 to June 30: 52 days of 10.00."""
    phase = _quarterly(start=MAY_10_AFTERNOON)
    fees = rate_period(replace(_q2([phase]), start=MAY_10_AFTERNOON))
    assert _fixed(fees) == [("Q in arrears", 52000)]


def test_a_terminated_prepaid_period_credits_the_days_after_the_termination_day():
    """CreditNotes::CreateFromTermination#remaining_duration: from the day after the
    termination to the period's last day, May 11 to June 30: 51 days of 10.00."""
    phase = _quarterly(advance=True, ahead=True, end=MAY_10_AFTERNOON)
    fees = rate_period(_q2([phase], end=MAY_10_AFTERNOON, ended_by="termination"))
    assert _fixed(fees) == [("Q unused time (credit)", -51000)]


def test_an_upgrade_moment_credits_from_the_upgrade_day_and_bills_the_new_plan():
    """The `advance` row of an upgrade: CreditNotes::CreateFromTermination with upgrade
    credits the upgrade day too (billed_from -= 1.day): May 10 to June 30, 52 days of the
    old 10.00; the new plan (20.00 a day) is billed for the same 52 days at once."""
    moment = PeriodInput(
        currency="EUR",
        start=MAY_10_AFTERNOON,
        end=MAY_10_AFTERNOON,
        nominal_start=Q2_START,
        nominal_end=Q2_END,
        phases=[],
        advance=True,
        credit=_quarterly(advance=True, start=MAY_10_AFTERNOON),
        credit_nominal=(Q2_START, Q2_END),
        next_phase=_quarterly(182000, advance=True, start=MAY_10_AFTERNOON, code="big"),
        next_nominal=(Q2_START, Q2_END),
    )
    assert _fixed(rate_period(moment)) == [
        ("Q unused time (credit)", -52000),
        ("BIG in advance", 104000),
    ]


def test_a_prepaid_stretch_is_not_billed_again_at_the_period_end():
    """The end of a prepaid period bills its usage and the next period ahead, not itself."""
    phase = _quarterly(advance=True, ahead=True)
    upcoming = _quarterly(advance=True, start=Q2_END, end=datetime(2026, 10, 1, tzinfo=UTC))
    fees = rate_period(
        _q2([phase], next_phase=upcoming, next_nominal=(Q2_END, datetime(2026, 10, 1, tzinfo=UTC)))
    )
    assert _fixed(fees) == [("Q in advance (next period)", 91000)]


def test_no_fee_is_billed_ahead_while_in_trial_and_the_trial_end_bills_from_its_day():
    """Invoices::CalculateFeesService#in_trial_period_not_ending_today?: a renewal in the
    middle of a trial bills no fee; the trial's end does (FreeTrialBillingService), from
    its own day (#full_period_amount with a trial): May 10 to June 30, 52 days of 10.00."""
    upcoming = _quarterly(advance=True)
    renewal = PeriodInput(
        currency="EUR",
        start=datetime(2026, 3, 1, tzinfo=UTC),
        end=Q2_START,
        nominal_start=datetime(2026, 1, 1, tzinfo=UTC),
        nominal_end=Q2_START,
        phases=[],
        trial_ends_at=MAY_10_AFTERNOON,
        next_phase=upcoming,
        next_nominal=(Q2_START, Q2_END),
    )
    trial_end = replace(
        renewal,
        start=MAY_10_AFTERNOON,
        end=MAY_10_AFTERNOON,
        nominal_start=Q2_START,
        nominal_end=Q2_END,
        advance=True,
        next_phase=_quarterly(advance=True, start=MAY_10_AFTERNOON),
    )
    assert _fixed(rate_period(renewal)) == []
    assert _fixed(rate_period(trial_end)) == [("Q in advance", 52000)]


@given(
    amount=st.integers(min_value=0, max_value=10**10),
    cut=st.integers(min_value=1, max_value=91 * 86400 - 1),
)
def test_days_prorated_pieces_add_up_to_the_whole_within_one_minor_unit(amount, cut):
    """An upgrade at any second splits the quarter's days between the two plans, and a
    termination's used days plus the prepaid credit make the whole: within one cent."""
    moment = Q2_START + timedelta(seconds=cut)
    old = _quarterly(amount, end=moment)
    new = _quarterly(amount, start=moment, code="new")
    upgrade = sum(fee.amount_cents for fee in rate_period(_q2([old, new])))
    used = rate_period(_q2([old], end=moment, ended_by="termination"))
    prepaid = _quarterly(amount, advance=True, ahead=True, end=moment)
    credit = rate_period(_q2([prepaid], end=moment, ended_by="termination"))
    assert abs(upgrade - amount) <= 1
    credited = sum(fee.amount_cents for fee in credit)
    assert abs(used[0].amount_cents - credited - amount) <= 1


@given(
    amount=st.integers(min_value=0, max_value=10**10),
    days=st.integers(min_value=0, max_value=366),
    whole=st.integers(min_value=1, max_value=366),
)
def test_prorate_days_is_the_exact_share_rounded_half_up(amount, days, whole):
    share = Decimal(amount) * min(days, whole) / whole
    assert prorate_days(amount_cents=amount, days=days, whole=whole) == int(
        share.quantize(Decimal(1), ROUND_HALF_UP)
    )
