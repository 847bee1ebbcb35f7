"""Metrics declare their filterable keys and charges price by them, as Lago's do: what the
API accepts, what it refuses, and what it freezes under running subscriptions."""

import pytest

from subscriptions.charges import filter_precedence
from tests.factories import SubscriptionFactory
from tests.helpers.pricing import MODEL_DIRECTION_FILTERS, TOKEN_FILTERS, ai_plan, token_metric

pytestmark = pytest.mark.django_db

METRIC = {
    "code": "llm_tokens",
    "name": "LLM tokens",
    "aggregation": "sum",
    "field_name": "tokens",
    "filters": TOKEN_FILTERS,
}


def _plan(charge: dict) -> dict:
    return {
        "code": "ai",
        "name": "AI",
        "interval": "monthly",
        "amount_cents": 1000,
        "currency": "USD",
        "charges": [{"metric": "llm_tokens", "model": "standard", **charge}],
    }


def test_a_metric_with_filters_and_a_plan_pricing_by_them_are_created(client):
    created = client.post("/api/v1/billable_metrics/", METRIC, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["filters"] == TOKEN_FILTERS

    charge = {
        "properties": {"amount": "0.01", "pricing_group_keys": ["region"]},
        "filters": MODEL_DIRECTION_FILTERS,
    }
    response = client.post("/api/v1/plans/", _plan(charge), format="json")

    assert response.status_code == 201, response.json()
    (stored,) = response.json()["charges"]
    assert (stored["properties"], stored["filters"]) == (charge["properties"], charge["filters"])


@pytest.mark.parametrize(
    "filters",
    [
        [{"key": "model", "values": []}],
        [{"key": "model", "values": ["a"]}, {"key": "model", "values": ["b"]}],
        [{"key": "model", "values": ["a", "a"]}],
        [{"key": "model"}],
        [{"key": "model", "values": ["__ALL_FILTER_VALUES__"]}],
        {"model": ["a"]},
    ],
)
def test_malformed_metric_filters_are_refused(client, filters):
    response = client.post(
        "/api/v1/billable_metrics/", {**METRIC, "filters": filters}, format="json"
    )

    assert response.status_code == 400, response.json()
    assert "filters" in str(response.json())


@pytest.mark.parametrize(
    ("charge", "says"),
    [
        (
            {"properties": {"amount": "1"}, "values": {"region": ["eu"]}},
            "declares no filter 'region'",
        ),
        ({"properties": {"amount": "1"}, "values": {"model": ["medium"]}}, "values the metric"),
        ({"properties": {"amount": "1"}, "values": {}}, "must map"),
        ({"properties": {}, "values": {"model": ["small"]}}, "amount"),
        ({"properties": {"amount": "1"}, "values": {"model": ["small"]}, "code": "x"}, "unknown"),
    ],
)
def test_charge_filters_must_name_the_metric_s_keys_and_values(client, charge, says):
    client.post("/api/v1/billable_metrics/", METRIC, format="json")

    response = client.post(
        "/api/v1/plans/",
        _plan({"properties": {"amount": "0.01"}, "filters": [charge]}),
        format="json",
    )

    assert response.status_code == 400, response.json()
    assert says in str(response.json())


def test_pricing_group_keys_must_be_a_list_of_keys(client):
    client.post("/api/v1/billable_metrics/", METRIC, format="json")

    response = client.post(
        "/api/v1/plans/",
        _plan({"properties": {"amount": "0.01", "pricing_group_keys": "region"}}),
        format="json",
    )

    assert response.status_code == 400, response.json()
    assert "pricing_group_keys" in str(response.json())


def test_the_filters_of_a_subscribed_metric_are_frozen(client):
    metric = token_metric()
    SubscriptionFactory(external_id="sub-ai", plan=ai_plan(metric))

    response = client.patch(
        "/api/v1/billable_metrics/llm_tokens/",
        {"filters": [{"key": "model", "values": ["small", "large", "xl"]}]},
        format="json",
    )

    assert response.status_code == 409, response.json()
    assert response.json()["errors"][0]["code"] == "metric_in_use"


def test_a_metric_value_a_plan_prices_by_cannot_be_removed(client):
    ai_plan(token_metric())  # no subscription: the metric is not in use

    removed = client.patch(
        "/api/v1/billable_metrics/llm_tokens/",
        {"filters": [{"key": "model", "values": ["small", "large"]}]},
        format="json",
    )
    added = client.patch(
        "/api/v1/billable_metrics/llm_tokens/",
        {"filters": [*TOKEN_FILTERS, {"key": "region", "values": ["eu"]}]},
        format="json",
    )

    assert removed.status_code == 409, removed.json()
    assert removed.json()["errors"][0]["code"] == "metric_filters_in_use"
    assert added.status_code == 200, added.json()


def test_precedence_is_more_keys_then_the_narrower_values_then_the_earlier_filter():
    metric_filters = [{"key": "model", "values": ["small", "large"]}, *TOKEN_FILTERS[1:]]
    filters = [
        {"properties": {}, "values": {"model": ["small", "large"]}},  # 0
        {"properties": {}, "values": {"model": ["large"]}},  # 1: a subset of 0
        {"properties": {}, "values": {"model": ["large"], "direction": ["output"]}},  # 2
        {"properties": {}, "values": {"model": ["__ALL_FILTER_VALUES__"]}},  # 3: same as 0
    ]

    ranked = filter_precedence(filters, metric_filters)

    assert [index for index, _ in ranked] == [2, 1, 0, 3]
    assert ranked[3][1] == {"model": ["small", "large"]}
