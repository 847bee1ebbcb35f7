"""Lago's minimum commitment in the rating engine (rating.commitment_true_ups), against
Lago's own scenarios, recomputed by hand. Lago's references are in getlago/lago-api:
spec/scenarios/commitments/minimum/** and app/services/commitments/**."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.invoicing.rating import (
    ENDED_BY_TERMINATION,
    ChargeUsage,
    PeriodInput,
    PhaseUsage,
    rate_period,
)

FEB_28 = datetime(2024, 2, 28, tzinfo=UTC)
MAR_1 = datetime(2024, 3, 1, tzinfo=UTC)
APR_1 = datetime(2024, 4, 1, tzinfo=UTC)
FEB_1 = datetime(2024, 2, 1, tzinfo=UTC)
MAR_16 = datetime(2024, 3, 16, tzinfo=UTC)


def _phase(
    *,
    start: datetime,
    end: datetime,
    units: int,
    pay_in_advance: bool = False,
    plan_code: str = "enterprise",
    amount_cents: int = 10_000,
    commitment: int | None = 1_000_000,
    name: str = "",
    billed_ahead: bool = False,
) -> PhaseUsage:
    return PhaseUsage(
        plan_code=plan_code,
        plan_name=plan_code.title(),
        amount_cents=amount_cents,
        pay_in_advance=pay_in_advance,
        start=start,
        end=end,
        charges=[
            ChargeUsage(
                metric_code="metered",
                charge_model="standard",
                properties={"amount": "1"},
                units=D(units),
            )
        ],
        minimum_commitment_cents=commitment,
        minimum_commitment_name=name,
        billed_ahead=billed_ahead,
    )


def _period(start, end, nominal_start, nominal_end, phases, **kwargs) -> PeriodInput:
    return PeriodInput(
        currency="EUR",
        start=start,
        end=end,
        nominal_start=nominal_start,
        nominal_end=nominal_end,
        phases=phases,
        **kwargs,
    )


def _true_ups(fees):
    return [(fee.description, fee.amount_cents) for fee in fees if fee.fee_type == "commitment"]


def test_in_arrears_first_partial_period_prorates_the_commitment_by_days():
    """Lago: spec/scenarios/commitments/minimum/in_arrears/calendar/monthly_spec.rb, "when
    subscription is billed for the second period" (65_276). Subscribed on 2024-02-28, a
    monthly calendar plan of 100.00 in arrears with a 10,000.00 commitment, 30.00 of usage.
    February 2024 has 29 days, 2 of them covered (Lago counts dates; we start at 00:00):
    commitment 1_000_000 * 2/29 = 68_965.52 -> 68_966; fee 10_000 * 2/29 = 689.66 -> 690;
    charges 3_000; true-up 68_966 - 690 - 3_000 = 65_276."""
    fees = rate_period(
        _period(FEB_28, MAR_1, FEB_1, MAR_1, [_phase(start=FEB_28, end=MAR_1, units=30)])
    )
    assert [(f.fee_type, f.amount_cents) for f in fees] == [
        ("subscription", 690),
        ("charge", 3_000),
        ("commitment", 65_276),
    ]
    true_up = fees[-1]
    assert (true_up.description, true_up.plan_code) == ("Minimum commitment", "enterprise")
    assert (true_up.start, true_up.end, true_up.units) == (FEB_28, MAR_1, D(1))
    assert true_up.unit_amount == D("652.76")


def test_in_arrears_full_period():
    """Lago: in_arrears/calendar/monthly_spec.rb, "third period" (989_000): March in full,
    1_000_000 - 10_000 (fee) - 1_000 (charges) = 989_000."""
    fees = rate_period(
        _period(MAR_1, APR_1, MAR_1, APR_1, [_phase(start=MAR_1, end=APR_1, units=10)])
    )
    assert _true_ups(fees) == [("Minimum commitment", 989_000)]


def test_in_advance_first_period_counts_its_own_advance_fee_not_the_next_one():
    """Lago: spec/scenarios/commitments/minimum/in_advance/calendar/monthly_spec.rb, "second
    period" (61_276): the invoice that bills March ahead reconciles February 28-29; 70.00 of
    usage (Lago's three charges: 25 + 30 + 15). 68_966 - 690 (February's fee, billed in
    advance) - 7_000 = 61_276; March's 10_000 billed ahead is not counted."""
    fees = rate_period(
        _period(
            FEB_28,
            MAR_1,
            FEB_1,
            MAR_1,
            [_phase(start=FEB_28, end=MAR_1, units=70, pay_in_advance=True)],
            next_phase=_phase(start=MAR_1, end=APR_1, units=0, pay_in_advance=True),
            next_nominal=(MAR_1, APR_1),
        )
    )
    assert [(f.fee_type, f.amount_cents) for f in fees] == [
        ("subscription", 690),
        ("charge", 7_000),
        ("subscription", 10_000),
        ("commitment", 61_276),
    ]


def test_in_advance_prepaid_period_counts_the_fee_billed_on_the_invoice_before():
    """Lago: in_advance/calendar/monthly_spec.rb, "third period" (988_500): March's fee
    (10_000) was billed on March 1st; 15.00 of usage. 1_000_000 - 10_000 - 1_500 = 988_500
    (app/services/commitments/minimum/in_advance/calculate_true_up_fee_service.rb counts the
    pay-in-advance subscription fee whose boundaries lie in the period)."""
    fees = rate_period(
        _period(
            MAR_1,
            APR_1,
            MAR_1,
            APR_1,
            [_phase(start=MAR_1, end=APR_1, units=15, pay_in_advance=True, billed_ahead=True)],
        )
    )
    assert [(f.fee_type, f.amount_cents) for f in fees] == [
        ("charge", 1_500),
        ("commitment", 988_500),
    ]


def test_termination_of_a_prepaid_period_counts_the_whole_prepaid_fee():
    """Lago: calculate_amount_service.rb prorates a terminated subscription's commitment up
    to terminated_at (calculate_prorated_coefficient_service.rb `ending_at`), counted in
    days as the fixed fee is, the termination day included (Fees::SubscriptionService
    #terminated_amount), while the in-advance fee billed for the whole period still counts
    in full (the unused part goes back on a credit note, not a fee). Terminated 2024-03-16
    (March 1-16: 16 of 31 days): 1_000_000 * 16/31 = 516_129.03 -> 516_129; minus 10_000
    prepaid, minus 0 usage = 506_129. Our credit line for the unused 15 days (March 17-31:
    10_000 * 15/31 = -4_839) is not counted either."""
    fees = rate_period(
        _period(
            MAR_1,
            MAR_16,
            MAR_1,
            APR_1,
            [_phase(start=MAR_1, end=MAR_16, units=0, pay_in_advance=True, billed_ahead=True)],
            ended_by=ENDED_BY_TERMINATION,
        )
    )
    assert [(f.fee_type, f.amount_cents) for f in fees] == [
        ("subscription", -4_839),
        ("charge", 0),
        ("commitment", 506_129),
    ]


def test_fees_at_or_above_the_commitment_add_no_line():
    """Lago: app/services/invoices/calculate_fees_service.rb skips the true-up when
    CalculateTrueUpFeeService gives 0 (fees >= commitment). 10_000 + 990_000 = 1_000_000."""
    at = rate_period(
        _period(MAR_1, APR_1, MAR_1, APR_1, [_phase(start=MAR_1, end=APR_1, units=9_900)])
    )
    above = rate_period(
        _period(MAR_1, APR_1, MAR_1, APR_1, [_phase(start=MAR_1, end=APR_1, units=20_000)])
    )
    no_commitment = rate_period(
        _period(
            MAR_1, APR_1, MAR_1, APR_1, [_phase(start=MAR_1, end=APR_1, units=0, commitment=None)]
        )
    )
    assert _true_ups(at) == _true_ups(above) == _true_ups(no_commitment) == []


def test_an_upgrade_mid_period_trues_up_each_plan_on_its_own_share():
    """Lago ends the subscription on an upgrade: the old plan's true-up is prorated up to
    the change (spec/scenarios/commitments/minimum/on_termination_spec.rb, "upgraded"), the
    new plan's from it. March 2024, upgraded on the 16th (15 and 16 days of 31), the new
    plan 200.00 with a 20,000.00 commitment named "Committed spend":
    old: 1_000_000 * 15/31 -> 483_871; fee 10_000 * 15/31 -> 4_839; usage 1_000 -> 478_032.
    new: 2_000_000 * 16/31 -> 1_032_258; fee 20_000 * 16/31 -> 10_323; usage 2_000
    -> 1_019_935."""
    fees = rate_period(
        _period(
            MAR_1,
            APR_1,
            MAR_1,
            APR_1,
            [
                _phase(start=MAR_1, end=MAR_16, units=10),
                _phase(
                    start=MAR_16,
                    end=APR_1,
                    units=20,
                    plan_code="scale",
                    amount_cents=20_000,
                    commitment=2_000_000,
                    name="Committed spend",
                ),
            ],
        )
    )
    assert [(f.fee_type, f.plan_code, f.amount_cents) for f in fees] == [
        ("subscription", "enterprise", 4_839),
        ("charge", "enterprise", 1_000),
        ("subscription", "scale", 10_323),
        ("charge", "scale", 2_000),
        ("commitment", "enterprise", 478_032),
        ("commitment", "scale", 1_019_935),
    ]
    assert _true_ups(fees) == [("Minimum commitment", 478_032), ("Committed spend", 1_019_935)]


def test_phases_of_one_plan_share_one_true_up_with_the_latest_commitment():
    """An overrides change opens a new phase of the same plan: one Lago subscription, one
    true-up over the whole period, at the commitment in force at its end (Lago bills the
    commitment of the plan the subscription has when the period is invoiced).
    1_200_000 - (4_839 + 5_161) - (1_000 + 2_000) = 1_187_000."""
    fees = rate_period(
        _period(
            MAR_1,
            APR_1,
            MAR_1,
            APR_1,
            [
                _phase(start=MAR_1, end=MAR_16, units=10),
                _phase(start=MAR_16, end=APR_1, units=20, commitment=1_200_000),
            ],
        )
    )
    assert [f.amount_cents for f in fees if f.fee_type != "commitment"] == [
        4_839,
        1_000,
        5_161,
        2_000,
    ]
    assert _true_ups(fees) == [("Minimum commitment", 1_187_000)]


@pytest.mark.parametrize(
    ("nominal_start", "nominal_end", "true_up"),
    [
        # Lago: in_arrears/calendar/weekly_spec.rb, "second period" (845_572): the week of
        # Monday 2024-03-11, 6 of 7 days: 857_142.86 -> 857_143; 8_571.43 -> 8_571; 3_000.
        (datetime(2024, 3, 11, tzinfo=UTC), datetime(2024, 3, 18, tzinfo=UTC), 845_572),
        # Lago: in_arrears/calendar/quarterly_spec.rb, "second period" (214_582): Q1 2024,
        # 20 of 91 days: 219_780.22 -> 219_780; 2_197.80 -> 2_198; 3_000.
        (datetime(2024, 1, 1, tzinfo=UTC), APR_1, 214_582),
    ],
)
def test_other_intervals_prorate_by_their_own_period(nominal_start, nominal_end, true_up):
    """Subscribed on 2024-03-12 (Lago at 10:00, counting dates; we at 00:00), 30.00 of usage."""
    start = datetime(2024, 3, 12, tzinfo=UTC)
    fees = rate_period(
        _period(
            start,
            nominal_end,
            nominal_start,
            nominal_end,
            [_phase(start=start, end=nominal_end, units=30)],
        )
    )
    assert _true_ups(fees) == [("Minimum commitment", true_up)]


def test_a_change_of_overrides_on_a_prepaid_period_counts_the_prepaid_fee_once():
    """The renewal billed 10_000 ahead for the whole period; an overrides change mid-way
    bills nothing and continues that stretch (Lago swaps the plan), so the commitment
    counts the 10_000 once: 1_000_000 - 10_000 = 990_000 (counting the continuation's
    share again would undercharge)."""
    fees = rate_period(
        _period(
            MAR_1,
            APR_1,
            MAR_1,
            APR_1,
            [
                _phase(start=MAR_1, end=MAR_16, units=0, pay_in_advance=True, billed_ahead=True),
                replace(
                    _phase(
                        start=MAR_16, end=APR_1, units=0, pay_in_advance=True, billed_ahead=True
                    ),
                    continues_prepaid=True,
                ),
            ],
        )
    )
    assert [f.amount_cents for f in fees if f.fee_type == "commitment"] == [990_000]
