"""Lago's weighted_sum aggregation, recurring metrics and prorated charges, rated to the
cent by hand. November 2026 has 30 days, October 31: the periods are calendar months."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.usage.selectors import prorated_units, usage_units
from subscriptions.models import BillableMetric, Subscription
from tests.factories import BillableMetricFactory, ChargeFactory, PlanFactory
from tests.helpers.invoicing import NOV_1, OCT_1, close_periods, generate, record, subscribe

pytestmark = pytest.mark.django_db

DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, tzinfo=UTC)
NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _on_december_2():
    """October's and November's periods have ended: both can be invoiced."""
    with time_machine.travel(DEC_2, tick=True):
        yield


def _seats_plan(catalog, **metrics: dict) -> None:
    """A plan "seats" (no fixed fee) with a standard charge of 2.00 a unit on each metric
    given ({code: {metric fields, "prorated": bool}})."""
    plan = PlanFactory(code="seats", name="Seats", amount_cents=0, currency="USD")
    for code, fields in metrics.items():
        prorated = fields.pop("prorated", False)
        metric = BillableMetricFactory(code=code, field_name="seats", **fields)
        ChargeFactory(plan=plan, metric=metric, properties={"amount": "2"}, prorated=prorated)


def _charge_cents(client, start: datetime, end: datetime) -> dict[str, tuple[str, int]]:
    code, invoice = generate(client, "sub-seats", period_start=start, period_end=end)
    assert code in (200, 201), invoice
    return {
        line["description"]: (line["units"], line["amount_cents"])
        for line in invoice["lines"]
        if line["description"] != "Seats in arrears"
    }


def _start(client) -> None:
    subscribe(client, "sub-seats", "seats", OCT_1)


def test_weighted_sum_recurring_carries_the_seats_and_weights_the_new_ones(client, catalog):
    """weighted_sum_agg_spec.rb / weighted_sum_service.rb: the value over time, weighted by
    its share of the period, starting from the value carried over for a recurring metric.
    10 seats added on October 1, 5 more on November 16 (15 of November's 30 days left).
    October: 10 for the whole month = 10 units at 2.00 = 20.00. November: 10 carried in
    for the whole month + 5 x 15/30 = 12.5 units at 2.00 = 25.00. The same metric not
    recurring starts November from 0: 5 x 15/30 = 2.5 units = 5.00."""
    _seats_plan(
        catalog,
        seats={"aggregation": "weighted_sum", "recurring": True},
        seats_once={"aggregation": "weighted_sum"},
    )
    _start(client)
    for metric in ("seats", "seats_once"):
        record(
            client,
            "sub-seats",
            metric,
            [(OCT_1, {"seats": 10}), (NOV_16, {"seats": 5})],
        )
    close_periods(DEC_2)

    october = _charge_cents(client, OCT_1, NOV_1)
    november = _charge_cents(client, NOV_1, DEC_1)

    assert october["seats"][1] == 2000
    assert october["seats_once"][1] == 2000
    assert Decimal(november["seats"][0]) == Decimal("12.5")
    assert november["seats"][1] == 2500
    assert Decimal(november["seats_once"][0]) == Decimal("2.5")
    assert november["seats_once"][1] == 500


def test_prorated_recurring_sum_bills_each_seat_for_its_days(client, catalog):
    """prorated_aggregations/sum_service.rb (spec/services/billable_metrics/
    prorated_aggregations/sum_service_spec.rb): a recurring sum's units carried in count for
    the whole period, each new one from its day to the period's last, both counted
    (duration_ratio_sql). 10 seats on October 1, 5 on November 16: November is 10 x 30/30
    + 5 x 15/30 = 12.5 units at 2.00 = 25.00. Not prorated, the recurring sum bills the 15
    seats it holds: 30.00; October is 10 units = 20.00 either way."""
    _seats_plan(
        catalog,
        seats={"aggregation": "sum", "recurring": True, "prorated": True},
        licenses={"aggregation": "sum", "recurring": True},
    )
    _start(client)
    for metric in ("seats", "licenses"):
        record(client, "sub-seats", metric, [(OCT_1, {"seats": 10}), (NOV_16, {"seats": 5})])
    close_periods(DEC_2)

    october = _charge_cents(client, OCT_1, NOV_1)
    november = _charge_cents(client, NOV_1, DEC_1)

    assert (october["seats"][1], october["licenses"][1]) == (2000, 2000)
    assert Decimal(november["seats"][0]) == Decimal("12.5")
    assert november["seats"][1] == 2500
    assert november["licenses"][1] == 3000


def test_prorated_recurring_unique_count_counts_a_value_from_its_first_day(client, catalog):
    """prorated_aggregations/unique_count_service.rb: each unique value is billed from the
    day it first appeared. "ann" since October 1, "bob" from November 16, "ann" again on
    November 20 (already counted): November is 1 + 15/30 = 1.5 units at 2.00 = 3.00."""
    _seats_plan(catalog, users={"aggregation": "unique_count", "recurring": True, "prorated": True})
    _start(client)
    record(
        client,
        "sub-seats",
        "users",
        [
            (OCT_1, {"seats": "ann"}),
            (NOV_16, {"seats": "bob"}),
            (datetime(2026, 11, 20, tzinfo=UTC), {"seats": "ann"}),
        ],
    )
    close_periods(DEC_2)

    assert _charge_cents(client, OCT_1, NOV_1)["users"][1] == 200
    november = _charge_cents(client, NOV_1, DEC_1)
    assert Decimal(november["users"][0]) == Decimal("1.5")
    assert november["users"][1] == 300


def test_weighted_sum_matches_lagos_spec_figure(client, catalog):
    """weighted_sum_service_spec.rb "aggregates the events": over August 2023 (31 days),
    +2 at 00:00, +3 at 01:00, +1 at 01:30, -4 at 02:00, -2 at 04:00, +10 at 05:00, -10 at
    05:30 hold 2x1h + 5x0.5h + 6x0.5h + 2x2h + 0x1h + 10x0.5h = 16.5 unit-hours, over 744
    hours: 0.02218 (rounded to 5 places)."""
    aug_1, sep_1 = datetime(2023, 8, 1, tzinfo=UTC), datetime(2023, 9, 1, tzinfo=UTC)
    plan = PlanFactory(code="seats", name="Seats", amount_cents=0, currency="USD")
    metric = BillableMetricFactory(
        code="agents", aggregation="weighted_sum", field_name="value", negative_values_allowed=True
    )
    ChargeFactory(plan=plan, metric=metric, properties={"amount": "1"})
    with time_machine.travel(datetime(2023, 9, 2, tzinfo=UTC), tick=False):
        subscribe(client, "sub-seats", "seats", datetime(2023, 7, 1, tzinfo=UTC))
        steps = [(0, 0, 2), (1, 0, 3), (1, 30, 1), (2, 0, -4), (4, 0, -2), (5, 0, 10), (5, 30, -10)]
        record(
            client,
            "sub-seats",
            "agents",
            [(aug_1.replace(hour=h, minute=m), {"value": v}) for h, m, v in steps],
        )
    subscription = Subscription.objects.get(external_id="sub-seats")

    units = usage_units(subscription=subscription, start=aug_1, end=sep_1)[metric.pk]

    assert units.quantize(Decimal("0.00001")) == Decimal("0.02218")
    assert abs(units - Decimal("16.5") / Decimal(744)) < Decimal("1e-15")


def test_prorated_units_round_up_to_five_places(client, catalog):
    """sum_service.rb: compute_event_aggregation.ceil(5). 1 seat from November 2 is 29/30 =
    0.966666... units: 0.96667."""
    _seats_plan(catalog, seats={"aggregation": "sum", "recurring": True, "prorated": True})
    _start(client)
    record(client, "sub-seats", "seats", [(datetime(2026, 11, 2, 12, tzinfo=UTC), {"seats": 1})])
    subscription = Subscription.objects.get(external_id="sub-seats")
    metric = BillableMetric.objects.get(code="seats")

    units = prorated_units(subscription=subscription, metric=metric, start=NOV_1, end=DEC_1)

    assert units == Decimal("0.96667")


def test_prorated_sum_matches_lagos_spec_figure(client, catalog):
    """prorated_aggregations/sum_service_spec.rb "aggregates the events": a recurring sum
    over May 2023 (31 days) with two events of 2.5 months before (carried in for the whole
    period) and two of 12 on May 26 (6 days, 26th to 31st): 5 + 12x6/31 + 12x6/31 =
    9.645161..., ceil(5) = 9.64517."""
    may_1, jun_1 = datetime(2023, 5, 1, tzinfo=UTC), datetime(2023, 6, 1, tzinfo=UTC)
    plan = PlanFactory(code="seats", name="Seats", amount_cents=0, currency="USD")
    metric = BillableMetricFactory(
        code="total", aggregation="sum", field_name="total_count", recurring=True
    )
    ChargeFactory(plan=plan, metric=metric, properties={"amount": "1"}, prorated=True)
    with time_machine.travel(datetime(2023, 6, 2, tzinfo=UTC), tick=False):
        subscribe(client, "sub-seats", "seats", datetime(2023, 1, 1, tzinfo=UTC))
        old, latest = datetime(2023, 4, 1, tzinfo=UTC), datetime(2023, 5, 26, tzinfo=UTC)
        events = [(old, {"total_count": 2.5})] * 2 + [(latest, {"total_count": 12})] * 2
        record(client, "sub-seats", "total", events)
    subscription = Subscription.objects.get(external_id="sub-seats")

    units = prorated_units(subscription=subscription, metric=metric, start=may_1, end=jun_1)

    assert units == Decimal("9.64517")
    # Not prorated, the recurring sum is every event up to the period's end: 29.
    assert usage_units(subscription=subscription, start=may_1, end=jun_1)[metric.pk] == 29
