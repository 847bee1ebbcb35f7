"""Pricing by dimension with the local engine (Lago's charge filters and
pricing_group_keys): one fee per filter and group, worked out by hand, on the invoice, in
the usage read and on the PDF."""

from datetime import UTC, datetime

import pytest
import time_machine

from billing.invoicing.models import Invoice
from billing.invoicing.pdf import invoice_html
from tests.factories import BillableMetricFactory, ChargeFactory, CustomerFactory, PlanFactory
from tests.helpers.invoicing import (
    NOV_1,
    NOV_15,
    OCT_1,
    amounts,
    close_periods,
    generate,
    record,
    subscribe,
)
from tests.helpers.pricing import (
    EXPECTED_OCTOBER_CHARGES,
    MIXED_OCTOBER,
    ai_plan,
    token_metric,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _on_november_15():
    with time_machine.travel(NOV_15, tick=True):
        yield


@pytest.fixture
def acme(db):
    return CustomerFactory(external_id="acme", currency="USD")


def _at(day: int) -> datetime:
    return datetime(2026, 10, day, 12, tzinfo=UTC)


def _october_invoice(client, events, metric="llm_tokens") -> dict:
    subscribe(client, "sub-ai", "ai", OCT_1)
    record(client, "sub-ai", metric, events)
    close_periods()
    code, invoice = generate(client, "sub-ai", period_start=OCT_1, period_end=NOV_1)
    assert code == 201, invoice
    return invoice


def test_a_month_of_mixed_events_is_rated_into_four_filter_lines(client, acme):
    ai_plan(token_metric())

    invoice = _october_invoice(client, MIXED_OCTOBER)

    assert amounts(invoice) == [("AI in arrears", 1000), *EXPECTED_OCTOBER_CHARGES]
    assert invoice["subtotal_amount_cents"] == 1000 + 350 + 600 + 500 + 900
    charges = invoice["lines"][1:]
    assert [(line["filter"], line["grouped_by"], line["units"]) for line in charges] == [
        ("small, input", {}, "35000.000000000000"),
        ("small, output", {}, "15000.000000000000"),
        ("large, input", {}, "5000.000000000000"),
        ("large, output", {}, "2250.000000000000"),
    ]
    assert [line["unit_amount"] for line in charges] == [
        "0.000100000000",
        "0.000400000000",
        "0.001000000000",
        "0.004000000000",
    ]
    html = invoice_html(invoice=Invoice.objects.get(pk=invoice["id"]))
    assert "filter: large, output" in html


def test_the_most_specific_filter_wins_and_unmatched_events_go_to_the_default(client, acme):
    # An event of a large model for output matches both filters: the one on more keys
    # prices it. Events of an undeclared model, or no filter's values, go to the default.
    ai_plan(
        token_metric(),
        filters=[
            {"properties": {"amount": "0.002"}, "values": {"model": ["large"]}},
            {
                "invoice_display_name": "Large output",
                "properties": {"amount": "0.004"},
                "values": {"model": ["large"], "direction": ["output"]},
            },
        ],
    )
    events = [
        (_at(2), {"model": "large", "direction": "output", "tokens": 1000}),
        (_at(3), {"model": "large", "direction": "input", "tokens": 1000}),
        (_at(4), {"model": "large", "tokens": 500}),
        (_at(5), {"model": "small", "direction": "input", "tokens": 100}),
        (_at(6), {"model": "medium", "direction": "output", "tokens": 50}),
    ]

    invoice = _october_invoice(client, events)

    # large: 1,500 at 0.002 = 3.00; large output: 1,000 at 0.004 = 4.00; the rest,
    # 150 at 0.01 = 1.50.
    assert amounts(invoice)[1:] == [
        ("llm_tokens — large", 300),
        ("llm_tokens — Large output", 400),
        ("llm_tokens", 150),
    ]
    assert [line["filter"] for line in invoice["lines"][1:]] == ["large", "Large output", ""]


def test_all_filter_values_match_every_declared_value_of_its_key(client, acme):
    ai_plan(
        token_metric(),
        filters=[
            {
                "properties": {"amount": "0.001"},
                "values": {"model": ["__ALL_FILTER_VALUES__"], "direction": ["input"]},
            }
        ],
    )
    events = [
        (_at(2), {"model": "large", "direction": "input", "tokens": 1000}),
        (_at(3), {"model": "small", "direction": "input", "tokens": 1000}),
        (_at(4), {"model": "medium", "direction": "input", "tokens": 100}),
    ]

    invoice = _october_invoice(client, events)

    # Declared models for input: 2,000 at 0.001 = 2.00; "medium" is not declared: the
    # default, 100 at 0.01 = 1.00.
    assert amounts(invoice)[1:] == [("llm_tokens — model, input", 200), ("llm_tokens", 100)]


def test_pricing_group_keys_rate_each_group_as_its_own_fee(client, acme):
    ai_plan(
        token_metric(),
        filters=[
            {
                "properties": {"amount": "0.002", "pricing_group_keys": ["region"]},
                "values": {"model": ["large"]},
            }
        ],
        properties={"amount": "0.001"},
    )
    events = [
        (_at(2), {"model": "large", "region": "eu", "tokens": 1000}),
        (_at(3), {"model": "large", "region": "us", "tokens": 500}),
        (_at(4), {"model": "large", "region": "eu", "tokens": 500}),
        (_at(5), {"model": "large", "tokens": 250}),
        (_at(6), {"model": "small", "region": "eu", "tokens": 700}),
        (_at(7), {"model": "small", "region": "us", "tokens": 300}),
    ]

    invoice = _october_invoice(client, events)

    # large in eu: 1,500 at 0.002 = 3.00; in us: 1.00; without a region: 0.50. The
    # default (no groups): 1,000 at 0.001 = 1.00.
    assert amounts(invoice)[1:] == [
        ("llm_tokens — large, eu", 300),
        ("llm_tokens — large, us", 100),
        ("llm_tokens — large, (none)", 50),
        ("llm_tokens", 100),
    ]
    assert [line["grouped_by"] for line in invoice["lines"][1:]] == [
        {"region": "eu"},
        {"region": "us"},
        {"region": None},
        {},
    ]


def test_a_charge_with_filters_and_no_usage_keeps_one_zero_line(client, acme):
    ai_plan(token_metric())

    invoice = _october_invoice(client, [])

    assert amounts(invoice) == [("AI in arrears", 1000), ("llm_tokens", 0)]


def test_unique_count_counts_distinct_values_within_each_filter(client, acme):
    users = BillableMetricFactory(
        code="users",
        aggregation="unique_count",
        field_name="user",
        filters=[{"key": "model", "values": ["small", "large"]}],
    )
    plan = PlanFactory(code="ai", name="AI", amount_cents=0, currency="USD")
    ChargeFactory(
        plan=plan,
        metric=users,
        properties={"amount": "1"},
        filters=[
            {"properties": {"amount": "2"}, "values": {"model": ["small"]}},
            {"properties": {"amount": "5"}, "values": {"model": ["large"]}},
        ],
    )
    events = [
        (_at(2), {"model": "small", "user": "u1"}),
        (_at(3), {"model": "small", "user": "u1"}),
        (_at(4), {"model": "small", "user": "u2"}),
        (_at(5), {"model": "large", "user": "u1"}),
    ]

    invoice = _october_invoice(client, events, metric="users")

    # u1 counts once for small and once for large.
    assert amounts(invoice)[1:] == [("users — small", 400), ("users — large", 500)]


def test_the_usage_read_breaks_down_by_filter(client, acme):
    ai_plan(token_metric())
    subscribe(client, "sub-ai", "ai", OCT_1)
    record(client, "sub-ai", "llm_tokens", MIXED_OCTOBER)
    close_periods()

    response = client.get(
        "/api/v1/subscriptions/sub-ai/usage/",
        {"from": OCT_1.isoformat(), "to": NOV_1.isoformat()},
    )

    assert response.status_code == 200, response.json()
    (metric,) = response.json()["metrics"]
    assert (metric["metric"], metric["units"], metric["amount_cents"]) == (
        "llm_tokens",
        "57250",
        2350,
    )
    assert [(fee["filter"], fee["units"], fee["amount_cents"]) for fee in metric["fees"]] == [
        ("small, input", "35000", 350),
        ("small, output", "15000", 600),
        ("large, input", "5000", 500),
        ("large, output", "2250", 900),
    ]


def _model_metric(code: str, field_name: str):
    return BillableMetricFactory(
        code=code,
        aggregation="sum",
        field_name=field_name,
        filters=[{"key": "model", "values": ["small", "large"]}],
    )


def test_percentage_rates_each_filter_on_its_own_events(client, acme):
    plan = PlanFactory(code="ai", name="AI", amount_cents=0, currency="USD")
    ChargeFactory(
        plan=plan,
        metric=_model_metric("spend", "amount"),
        charge_model="percentage",
        properties={"rate": "1"},
        filters=[
            {"properties": {"rate": "2", "fixed_amount": "0.5"}, "values": {"model": ["large"]}}
        ],
    )
    events = [
        (_at(2), {"model": "large", "amount": 100}),
        (_at(3), {"model": "small", "amount": 1000}),
        (_at(4), {"model": "large", "amount": 200}),
    ]

    invoice = _october_invoice(client, events, metric="spend")

    # large: 300 at 2 % = 6.00, plus 0.50 for each of its 2 events: 7.00. The default:
    # 1,000 at 1 % = 10.00 (the large events' fixed amounts are not its own).
    assert amounts(invoice)[1:] == [("spend — large", 700), ("spend", 1000)]


def test_dynamic_sums_each_filter_s_own_event_amounts(client, acme):
    plan = PlanFactory(code="ai", name="AI", amount_cents=0, currency="USD")
    ChargeFactory(
        plan=plan,
        metric=_model_metric("llm", "tokens"),
        charge_model="dynamic",
        properties={},
        filters=[{"properties": {}, "values": {"model": ["large"]}}],
    )
    subscribe(client, "sub-ai", "ai", OCT_1)
    events = [
        {
            "transaction_id": f"llm-{i}",
            "subscription": "sub-ai",
            "metric": "llm",
            "timestamp": _at(10).isoformat(),
            "properties": {"tokens": 10, "model": model},
            "precise_total_amount_cents": cents,
        }
        for i, (model, cents) in enumerate(
            (("large", "250.25"), ("small", "99.5"), ("large", "100"))
        )
    ]
    response = client.post("/api/v1/usage/batch/", {"events": events}, format="json")
    assert {r["status"] for r in response.json()["results"]} == {"created"}
    close_periods()

    code, invoice = generate(client, "sub-ai", period_start=OCT_1, period_end=NOV_1)

    assert code == 201, invoice
    # large: 250.25 + 100 = 350.25 cents -> 3.50; the default: 99.5 cents -> 1.00.
    assert amounts(invoice)[1:] == [("llm — large", 350), ("llm", 100)]
