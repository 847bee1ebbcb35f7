"""Pricing by dimension: an AI platform's token metric priced by model and direction
(Lago's charge filters), and a month of mixed events whose fees were worked out by hand."""

from datetime import UTC, datetime

from subscriptions.models import BillableMetric, Plan
from tests.factories import BillableMetricFactory, ChargeFactory, PlanFactory

TOKEN_FILTERS = [
    {"key": "model", "values": ["small", "large"]},
    {"key": "direction", "values": ["input", "output"]},
]

# Per token: small input 0.0001, small output 0.0004, large input 0.001, large output
# 0.004; anything else (the default) 0.01.
MODEL_DIRECTION_FILTERS = [
    {
        "invoice_display_name": None,
        "properties": {"amount": amount},
        "values": {"model": [model], "direction": [direction]},
    }
    for model, direction, amount in (
        ("small", "input", "0.0001"),
        ("small", "output", "0.0004"),
        ("large", "input", "0.001"),
        ("large", "output", "0.004"),
    )
]


def token_metric() -> BillableMetric:
    return BillableMetricFactory(
        code="llm_tokens",
        name="LLM tokens",
        aggregation="sum",
        field_name="tokens",
        filters=TOKEN_FILTERS,
    )


def ai_plan(metric: BillableMetric, filters=None, properties=None) -> Plan:
    """10.00 a month and one standard charge on the token metric."""
    plan = PlanFactory(code="ai", name="AI", amount_cents=1000, currency="USD")
    ChargeFactory(
        plan=plan,
        metric=metric,
        properties=properties or {"amount": "0.01"},
        filters=MODEL_DIRECTION_FILTERS if filters is None else filters,
    )
    return plan


def _at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=UTC)


# October's events, in no order of filter. By hand:
#   small, input:  10,000 + 20,000 + 5,000 = 35,000 at 0.0001 = 3.50
#   small, output: 12,000 + 3,000          = 15,000 at 0.0004 = 6.00
#   large, input:   4,000 + 1,000          =  5,000 at 0.001  = 5.00
#   large, output:  1,500 + 500 + 250      =  2,250 at 0.004  = 9.00
# and one large output event on November 2nd, in the next period.
MIXED_OCTOBER = [
    (_at(1, 0), {"model": "small", "direction": "input", "tokens": 10000}),
    (_at(3), {"model": "large", "direction": "output", "tokens": 1500}),
    (_at(5), {"model": "small", "direction": "output", "tokens": 12000}),
    (_at(8), {"model": "large", "direction": "input", "tokens": 4000}),
    (_at(12), {"model": "small", "direction": "input", "tokens": 20000}),
    (_at(15), {"model": "large", "direction": "output", "tokens": 500}),
    (_at(20), {"model": "small", "direction": "output", "tokens": 3000}),
    (_at(22), {"model": "large", "direction": "input", "tokens": 1000}),
    (_at(28), {"model": "small", "direction": "input", "tokens": 5000}),
    (_at(31, 23), {"model": "large", "direction": "output", "tokens": 250}),
    (
        datetime(2026, 11, 2, tzinfo=UTC),
        {"model": "large", "direction": "output", "tokens": 100000},
    ),
]

EXPECTED_OCTOBER_CHARGES = [
    ("llm_tokens — small, input", 350),
    ("llm_tokens — small, output", 600),
    ("llm_tokens — large, input", 500),
    ("llm_tokens — large, output", 900),
]
