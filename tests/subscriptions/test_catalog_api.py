"""Metrics and plans created through the API, with a charge of every model: the catalog
the other tests take from the factories, here built through the endpoints (their
refusals are in test_lifecycle_api)."""

import pytest

from subscriptions.models import Plan

pytestmark = pytest.mark.django_db

METRICS = [
    {"code": "api_calls", "name": "API calls", "aggregation": "count"},
    {"code": "tokens", "name": "Tokens", "aggregation": "sum", "field_name": "tokens"},
    {"code": "storage", "name": "Storage", "aggregation": "max", "field_name": "gb"},
    {"code": "seats", "name": "Seats", "aggregation": "unique_count", "field_name": "user"},
    {"code": "payments", "name": "Payments", "aggregation": "sum", "field_name": "amount"},
]
CHARGES = [
    {"metric": "api_calls", "model": "standard", "properties": {"amount": "0.002"}},
    {
        "metric": "tokens",
        "model": "graduated",
        "properties": {
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
    },
    {
        "metric": "storage",
        "model": "volume",
        "properties": {
            "volume_ranges": [
                {"from_value": 0, "to_value": 100, "per_unit_amount": "0.10", "flat_amount": "0"},
                {
                    "from_value": 101,
                    "to_value": None,
                    "per_unit_amount": "0.05",
                    "flat_amount": "5",
                },
            ]
        },
    },
    {
        "metric": "seats",
        "model": "package",
        "properties": {"amount": "5", "package_size": 10, "free_units": 5},
    },
    {
        "metric": "payments",
        "model": "percentage",
        "properties": {
            "rate": "2.5",
            "fixed_amount": "0.10",
            "free_units_per_events": 1,
            "per_transaction_min_amount": "0.20",
            "per_transaction_max_amount": "5",
        },
    },
]


def test_metrics_and_a_plan_with_a_charge_of_every_model_are_created(client):
    for metric in METRICS:
        response = client.post("/api/v1/billable_metrics/", metric, format="json")
        assert response.status_code == 201, response.json()
        body = response.json()
        assert (body["code"], body["aggregation"], body["field_name"]) == (
            metric["code"],
            metric["aggregation"],
            metric.get("field_name", ""),
        )

    response = client.post(
        "/api/v1/plans/",
        {
            "code": "pro",
            "name": "Pro",
            "interval": "monthly",
            "amount_cents": 4900,
            "currency": "usd",
            "pay_in_advance": True,
            "charges": CHARGES,
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["code"], body["amount_cents"], body["currency"], body["pay_in_advance"]) == (
        "pro",
        4900,
        "USD",
        True,
    )

    def by_metric(charges) -> list[tuple]:
        return sorted(charges, key=lambda charge: charge[0])

    sent = by_metric((c["metric"], c["model"], c["properties"]) for c in CHARGES)
    assert by_metric((c["metric"], c["model"], c["properties"]) for c in body["charges"]) == sent
    stored = Plan.objects.get(code="pro").charges.select_related("metric")
    assert by_metric((c.metric.code, c.charge_model, c.properties) for c in stored) == sent
    assert client.get("/api/v1/plans/pro/").json()["charges"] == body["charges"]
