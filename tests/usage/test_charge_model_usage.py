"""Charge models on recorded usage, through the usage read (the invoice's own rating path,
billing.invoicing.inputs): what each model reads of the events, as Lago does."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.usage.models import UsageRecord
from tests.factories import (
    BillableMetricFactory,
    ChargeFactory,
    CustomerFactory,
    PlanFactory,
    SubscriptionFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscribe(db):
    """subscribe({metric_code: (aggregation, field_name, model, properties)}): a
    subscription "sub-1" started two hours ago on a plan with those charges."""

    def make(charges: dict) -> timezone.datetime:
        plan = PlanFactory(code="p", name="P", amount_cents=0, currency="USD")
        for code, (aggregation, field_name, model, properties) in charges.items():
            metric = BillableMetricFactory(
                code=code, name=code, aggregation=aggregation, field_name=field_name
            )
            ChargeFactory(plan=plan, metric=metric, charge_model=model, properties=properties)
        start = timezone.now() - timedelta(hours=2)
        SubscriptionFactory(
            external_id="sub-1",
            customer=CustomerFactory(external_id="acme"),
            plan=plan,
            billing_time="anniversary",
            start_at=start,
        )
        return start

    return make


def record(client, tid, metric, at, status=201, amount=None, **properties):
    body = {
        "transaction_id": tid,
        "subscription": "sub-1",
        "metric": metric,
        "timestamp": at.isoformat(),
        "properties": properties,
    }
    if amount is not None:
        body["precise_total_amount_cents"] = amount
    response = client.post("/api/v1/usage/", body, format="json")
    assert response.status_code == status, response.json()
    return response.json()


def usage(client) -> dict:
    body = client.get("/api/v1/subscriptions/sub-1/usage/").json()
    return {m["metric"]: (Decimal(m["units"]), m["amount_cents"]) for m in body["metrics"]}


def test_graduated_and_volume_charge_the_first_flat_amount_without_usage(client, subscribe):
    """Lago charges the first range's flat amount at zero units, even with no event at all
    (spec/scenarios/current_usage/by_charge_model/graduated_spec.rb "non-prorated
    graduated with no events": 100 flat -> 10,000 cents; volume_service_spec.rb "when
    aggregation is 0")."""
    ranges = [
        {"from_value": 0, "to_value": 10, "per_unit_amount": "2", "flat_amount": "100"},
        {"from_value": 11, "to_value": None, "per_unit_amount": "1", "flat_amount": "50"},
    ]
    subscribe(
        {
            "tokens": ("sum", "tokens", "graduated", {"graduated_ranges": ranges}),
            "seats": ("max", "seats", "volume", {"volume_ranges": ranges}),
        }
    )
    got = usage(client)
    assert got["tokens"] == (Decimal(0), 10000)
    assert got["seats"] == (Decimal(0), 10000)


def test_percentage_on_a_count_metric_rates_the_counted_units(client, subscribe):
    """percentage_service.rb on a count_agg metric: the rate on the units (4 events, 4
    units) and the fixed fee per event: 4 * 10% + 4 * 0.50 = 2.40. Before, the rate went to
    the stored event values (none for a count), giving 2.00."""
    start = subscribe({"calls": ("count", "", "percentage", {"rate": "10", "fixed_amount": "0.5"})})
    for i in range(4):
        record(client, f"c{i}", "calls", start + timedelta(minutes=1 + i))
    assert usage(client)["calls"] == (Decimal(4), 240)


def test_percentage_on_a_max_metric_rates_the_max(client, subscribe):
    """percentage_service.rb on a max_agg metric: the rate on the max (30), a fixed fee per
    event: 30 * 10% + 3 * 1 = 6.00 (not 10% of the 60 stored values' sum)."""
    start = subscribe({"peak": ("max", "gb", "percentage", {"rate": "10", "fixed_amount": "1"})})
    for i, gb in enumerate((10, 30, 20)):
        record(client, f"g{i}", "peak", start + timedelta(minutes=1 + i), gb=gb)
    assert usage(client)["peak"] == (Decimal(30), 600)


def test_percentage_free_allowance_ends_at_the_first_limit_reached(client, subscribe):
    """percentage_service.rb (free_units_value, free_units_count), percentage_service_spec.rb
    values: events 50, 100, 250, 400 (800); 3 free events or 100 free, whichever comes
    first: 100 comes first. (800 - 100) * 1.3% + (4 - 1) * 2 = 9.10 + 6 = 15.10. The two
    limits one after the other gave 5.90."""
    properties = {
        "rate": "1.3",
        "fixed_amount": "2",
        "free_units_per_events": 3,
        "free_units_per_total_aggregation": "100",
    }
    start = subscribe({"spend": ("sum", "spent", "percentage", properties)})
    for i, spent in enumerate((50, 100, 250, 400)):
        record(client, f"s{i}", "spend", start + timedelta(minutes=1 + i), spent=spent)
    assert usage(client)["spend"] == (Decimal(800), 1510)


def test_dynamic_sums_the_amounts_the_events_carry(client, subscribe):
    """dynamic_service.rb: the events' precise_total_amount_cents summed, over the
    currency's subunit: 1234.5678 + 10 = 1244.5678 cents -> 12.445678 -> 1,245 cents."""
    start = subscribe({"llm": ("sum", "tokens", "dynamic", {})})
    record(client, "d1", "llm", start + timedelta(minutes=1), amount="1234.5678", tokens=100)
    record(client, "d2", "llm", start + timedelta(minutes=2), amount=10, tokens=50)
    assert usage(client)["llm"] == (Decimal(150), 1245)
    stored = UsageRecord.objects.get(transaction_id="d1")
    assert stored.precise_total_amount_cents == Decimal("1234.5678")


def test_dynamic_charges_nothing_when_the_units_are_zero(client, subscribe):
    """dynamic_service.rb: `return 0 if total_units.zero?`, whatever the amounts."""
    start = subscribe({"llm": ("sum", "tokens", "dynamic", {})})
    record(client, "d1", "llm", start + timedelta(minutes=1), amount="500", tokens=0)
    assert usage(client)["llm"] == (Decimal(0), 0)


def test_an_event_amount_is_checked_and_part_of_the_event(client, subscribe):
    """The amount is a bounded, non-negative decimal (core.limits.MAX_EVENT_AMOUNT_CENTS);
    resending the event with another amount is a conflict, with the same one a duplicate,
    and an event sent without one hashes as before (no conflict with older sends)."""
    start = subscribe({"llm": ("sum", "tokens", "dynamic", {})})
    at = start + timedelta(minutes=1)
    errors = record(client, "bad", "llm", at, status=422, amount="-1", tokens=1)
    assert errors["errors"][0]["attr"] == "precise_total_amount_cents"
    errors = record(client, "big", "llm", at, status=422, amount="1e13", tokens=1)
    assert errors["errors"][0]["code"] == "value_out_of_range"
    response = client.post(
        "/api/v1/usage/",
        {
            "transaction_id": "x",
            "subscription": "sub-1",
            "metric": "llm",
            "properties": {"tokens": 1},
            "precise_total_amount_cents": {"a": 1},
        },
        format="json",
    )
    assert response.status_code == 400
    record(client, "d1", "llm", at, amount="12.5", tokens=1)
    record(client, "d1", "llm", at, status=200, amount="12.5", tokens=1)
    record(client, "d1", "llm", at, status=409, amount="13", tokens=1)
    record(client, "plain", "llm", at, tokens=1)
    record(client, "plain", "llm", at, status=200, tokens=1)
