"""The catalog most tests subscribe to, built with the factories (the catalog API has
tests of its own)."""

import copy
from dataclasses import dataclass

from customers.models import Customer
from subscriptions.models import BillableMetric, Plan
from tests.factories import BillableMetricFactory, ChargeFactory, CustomerFactory, PlanFactory

GRADUATED_TOKENS = {
    "graduated_ranges": [
        {"from_value": 0, "to_value": 1000, "per_unit_amount": "0", "flat_amount": "0"},
        {"from_value": 1001, "to_value": None, "per_unit_amount": "0.0001", "flat_amount": "1"},
    ]
}


@dataclass(frozen=True)
class Catalog:
    api_calls: BillableMetric
    tokens: BillableMetric
    pro: Plan
    business: Plan
    starter: Plan
    acme: Customer


def build_catalog() -> Catalog:
    """Two metrics (api_calls, a count; tokens, a sum), plans of 49, 99 and 19 a month
    (pro, business, starter) each with a standard charge of 0.002 a call and a graduated
    one on tokens (the first 1,000 free, then 0.0001 each plus 1.00), and a customer
    "acme" paying in USD."""
    api_calls = BillableMetricFactory(code="api_calls", name="API calls")
    tokens = BillableMetricFactory(
        code="tokens", name="Tokens", aggregation="sum", field_name="tokens"
    )
    plans = {}
    for code, amount in (("pro", 4900), ("business", 9900), ("starter", 1900)):
        plan = PlanFactory(code=code, name=code.title(), amount_cents=amount, currency="USD")
        ChargeFactory(plan=plan, metric=api_calls, properties={"amount": "0.002"})
        ChargeFactory(
            plan=plan,
            metric=tokens,
            charge_model="graduated",
            properties=copy.deepcopy(GRADUATED_TOKENS),
        )
        plans[code] = plan
    acme = CustomerFactory(external_id="acme", currency="USD")
    return Catalog(api_calls=api_calls, tokens=tokens, acme=acme, **plans)
