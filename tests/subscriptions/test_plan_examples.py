"""The schema's CreatePlan examples are real: each is accepted by the API as documented,
and the usage its arithmetic names costs the cents it states (issue 13: examples in the
README and in the OpenAPI schema for each model, with the arithmetic shown once)."""

import pytest

from billing.invoicing.charge_models import charge_amount_cents
from subscriptions.api.examples import PLAN_EXAMPLES
from subscriptions.models import Charge
from tests.factories import BillableMetricFactory
from tests.helpers.openapi import api_schema

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("example", PLAN_EXAMPLES, ids=lambda e: e.model)
def test_each_example_is_accepted_and_costs_what_it_says(client, example):
    BillableMetricFactory(
        code=example.metric,
        aggregation=example.aggregation,
        field_name="" if example.aggregation == "count" else "value",
    )

    response = client.post("/api/v1/plans/", example.body(), format="json")

    assert response.status_code == 201, response.json()
    charge = Charge.objects.get(plan__code=example.body()["code"])
    cents = charge_amount_cents(
        charge_model=charge.charge_model,
        properties=charge.properties,
        units=example.units,
        currency="USD",
        event_values=example.event_values,
        aggregation=example.aggregation,
        precise_total_amount_cents=example.precise_total_amount_cents,
    )
    assert cents == example.cents, example.arithmetic


def test_every_charge_model_has_an_example_in_the_schema():
    create = api_schema()["paths"]["/api/v1/plans/"]["post"]
    examples = create["requestBody"]["content"]["application/json"]["examples"]

    assert {example.model for example in PLAN_EXAMPLES} == set(Charge.Model.values)
    assert len(examples) == len(PLAN_EXAMPLES)
    assert all(example["description"] for example in examples.values())
