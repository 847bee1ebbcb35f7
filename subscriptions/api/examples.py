"""CreatePlan's examples in the OpenAPI schema: one plan per charge model, each with the
arithmetic of one period shown once. tests/subscriptions/test_plan_examples.py posts
every example to the API and rates the usage each one names, so the documented cents are
the cents the service charges."""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import OpenApiExample


@dataclass(frozen=True)
class PlanExample:
    name: str
    metric: str  # its code; `aggregation` says how it counts
    aggregation: str
    model: str
    properties: dict[str, Any]
    # The usage of one period the arithmetic prices, and what it costs in cents.
    units: Decimal
    cents: int
    arithmetic: str
    event_values: tuple[Decimal, ...] = ()
    precise_total_amount_cents: Decimal = Decimal(0)
    minimum_commitment: dict[str, Any] | None = field(default=None)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": f"example-{self.model.replace('_', '-')}",
            "name": self.name,
            "interval": "monthly",
            "amount_cents": 0,
            "currency": "USD",
            "charges": [
                {"metric": self.metric, "model": self.model, "properties": self.properties}
            ],
        }
        if self.minimum_commitment is not None:
            body["minimum_commitment"] = self.minimum_commitment
        return body


PLAN_EXAMPLES = [
    PlanExample(
        name="Standard: a price per unit",
        metric="api_calls",
        aggregation="count",
        model="standard",
        properties={"amount": "0.002"},
        units=Decimal(12500),
        cents=2500,
        arithmetic="12,500 calls x 0.002 = 25.00.",
    ),
    PlanExample(
        name="Graduated: each tier prices its own units",
        metric="tokens",
        aggregation="sum",
        model="graduated",
        properties={
            "graduated_ranges": [
                {"from_value": 0, "to_value": 1000, "per_unit_amount": "0", "flat_amount": "0"},
                {
                    "from_value": 1001,
                    "to_value": None,
                    "per_unit_amount": "0.0001",
                    "flat_amount": "1",
                },
            ]
        },
        units=Decimal(3000),
        cents=120,
        arithmetic="3,000 tokens: the first 1,000 free, then 2,000 x 0.0001 = 0.20, plus the "
        "second tier's flat 1.00 = 1.20. A first tier's flat amount is due even at 0 units.",
    ),
    PlanExample(
        name="Volume: every unit at the price of the tier the total reaches",
        metric="storage_gb",
        aggregation="max",
        model="volume",
        properties={
            "volume_ranges": [
                {"from_value": 0, "to_value": 100, "per_unit_amount": "0.10", "flat_amount": "0"},
                {
                    "from_value": 101,
                    "to_value": None,
                    "per_unit_amount": "0.08",
                    "flat_amount": "0",
                },
            ]
        },
        units=Decimal(150),
        cents=1200,
        arithmetic="150 GB reach the second tier: 150 x 0.08 = 12.00.",
    ),
    PlanExample(
        name="Package: started packages past the free units",
        metric="api_calls",
        aggregation="count",
        model="package",
        properties={"amount": "5", "package_size": 1000, "free_units": 100},
        units=Decimal(2350),
        cents=1500,
        arithmetic="2,350 calls - 100 free = 2,250: 3 started packages of 1,000 x 5.00 = 15.00.",
    ),
    PlanExample(
        name="Percentage: a rate on amounts, a fee per transaction",
        metric="payments",
        aggregation="sum",
        model="percentage",
        properties={"rate": "2.5", "fixed_amount": "0.30"},
        units=Decimal(140),
        event_values=(Decimal(100), Decimal(40)),
        cents=410,
        arithmetic="Two payments of 100 and 40: 140 x 2.5 % = 3.50, plus 2 x 0.30 = 4.10.",
    ),
    PlanExample(
        name="Graduated percentage: a rate per tier",
        metric="payments",
        aggregation="sum",
        model="graduated_percentage",
        properties={
            "graduated_percentage_ranges": [
                {"from_value": 0, "to_value": 1000, "rate": "1", "flat_amount": "0"},
                {"from_value": 1001, "to_value": None, "rate": "0.5", "flat_amount": "2"},
            ]
        },
        units=Decimal(3000),
        cents=2200,
        arithmetic="3,000 of payments: 1,000 x 1 % = 10.00, then 2,000 x 0.5 % = 10.00 plus "
        "the second tier's flat 2.00 = 22.00.",
    ),
    PlanExample(
        name="Dynamic: each event carries its own price",
        metric="model_cost",
        aggregation="sum",
        model="dynamic",
        properties={},
        units=Decimal(2),
        precise_total_amount_cents=Decimal("1244.5678"),
        cents=1245,
        arithmetic="Events sent with precise_total_amount_cents 1234.5678 and 10: 1,244.5678 "
        "cents, rounded once: 12.45 (a third-party model's cost, passed through).",
    ),
]


def plan_examples() -> list[OpenApiExample]:
    return [
        OpenApiExample(
            example.name,
            value=example.body(),
            description=example.arithmetic,
            request_only=True,
        )
        for example in PLAN_EXAMPLES
    ]
