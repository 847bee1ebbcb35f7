"""Recurring metrics, weighted_sum and prorated charges in the catalog: Lago's rules
(billable_metric.rb validate_recurring and weighted_interval, charge.rb validate_prorated)
in the API, the model's clean (the admin's) and the Lago sync."""

import pytest
from django.core.exceptions import ValidationError

from subscriptions.models import Charge
from tests.factories import BillableMetricFactory, PlanFactory
from tests.helpers.outbox import drain_outbox

pytestmark = pytest.mark.django_db
METRICS = "/api/v1/billable_metrics/"


def _metric(client, **fields):
    body = {"code": "seats", "name": "Seats", "field_name": "seats", **fields}
    return client.post(METRICS, body, format="json")


def _plan(client, metric: str, model: str = "standard", **charge):
    properties = charge.pop("properties", None) or {"amount": "2"}
    body = {
        "code": "seats",
        "name": "Seats",
        "interval": "monthly",
        "amount_cents": 0,
        "currency": "usd",
        "charges": [{"metric": metric, "model": model, "properties": properties, **charge}],
    }
    return client.post("/api/v1/plans/", body, format="json")


def test_a_weighted_sum_metric_is_weighted_in_seconds_and_may_recur(client):
    """billable_metric.rb: weighted_interval is `seconds` for a weighted_sum_agg (the spec's
    default when not given)."""
    response = _metric(client, aggregation="weighted_sum", recurring=True)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["aggregation"], body["recurring"], body["weighted_interval"]) == (
        "weighted_sum",
        True,
        "seconds",
    )


@pytest.mark.parametrize("aggregation", ["count", "max", "latest"])
def test_only_sum_unique_count_and_weighted_sum_recur(client, aggregation):
    """billable_metric.rb validate_recurring: not_compatible_with_aggregation_type."""
    field = {} if aggregation == "count" else {"field_name": "seats"}
    response = _metric(client, aggregation=aggregation, recurring=True, **field)

    assert response.status_code == 400, response.json()
    assert "recurring" in str(response.json())


def test_weighted_interval_is_only_for_a_weighted_sum(client):
    response = _metric(client, aggregation="sum", weighted_interval="seconds")

    assert response.status_code == 400, response.json()
    assert "weighted_interval" in str(response.json())


def test_a_standard_charge_on_a_recurring_sum_may_be_prorated(client):
    assert _metric(client, aggregation="sum", recurring=True).status_code == 201

    response = _plan(client, "seats", prorated=True)

    assert response.status_code == 201, response.json()
    assert response.json()["charges"][0]["prorated"] is True
    assert Charge.objects.get(plan__code="seats").prorated is True


@pytest.mark.parametrize(
    ("aggregation", "recurring", "model", "properties"),
    [
        ("sum", False, "standard", None),  # not recurring (charge.rb)
        ("weighted_sum", True, "standard", None),  # weighted_sum is prorated already
        ("max", False, "standard", None),
        (
            "sum",
            True,
            "graduated",  # Lago allows it; not rated prorated here yet
            {
                "graduated_ranges": [
                    {"from_value": 0, "to_value": None, "per_unit_amount": "1", "flat_amount": "0"}
                ]
            },
        ),
    ],
)
def test_a_charge_is_prorated_only_as_lago_allows(
    client, aggregation, recurring, model, properties
):
    created = _metric(client, aggregation=aggregation, recurring=recurring)
    assert created.status_code == 201, created.json()

    response = _plan(client, "seats", model, prorated=True, properties=properties)

    assert response.status_code == 400, response.json()
    assert "prorated" in str(response.json())


def test_the_models_clean_refuses_a_prorated_charge_on_a_metric_that_does_not_recur():
    """The admin's forms run the model's clean: the same rule as the API."""
    metric = BillableMetricFactory(code="seats", aggregation="sum", field_name="seats")
    charge = Charge(
        plan=PlanFactory(), metric=metric, charge_model="standard", properties={"amount": "1"}
    )
    charge.prorated = True

    with pytest.raises(ValidationError) as refused:
        charge.full_clean(exclude=["lago_id"])

    assert "prorated" in refused.value.message_dict


def test_a_metric_stops_recurring_only_without_prorated_charges(client):
    assert _metric(client, aggregation="sum", recurring=True).status_code == 201
    assert _plan(client, "seats", prorated=True).status_code == 201

    response = client.patch(f"{METRICS}seats/", {"recurring": False}, format="json")

    assert response.status_code in (400, 409), response.json()


def test_recurring_weighted_and_prorated_reach_lago_as_its_spec_says(client, lago, settings):
    """Lago's BillableMetric (aggregation_type weighted_sum_agg, recurring,
    weighted_interval) and Charge (prorated), checked against the spec by the fake."""
    settings.BILLING_ENGINE = "lago"
    assert _metric(client, aggregation="weighted_sum", recurring=True).status_code == 201
    seats = {"code": "licenses", "name": "Licenses", "field_name": "n"}
    assert (
        client.post(METRICS, {**seats, "aggregation": "sum", "recurring": True}, format="json")
    ).status_code == 201
    assert _plan(client, "licenses", prorated=True).status_code == 201

    drain_outbox()

    sent = lago.billable_metrics["seats"]
    assert (sent["aggregation_type"], sent["recurring"], sent["weighted_interval"]) == (
        "weighted_sum_agg",
        True,
        "seconds",
    )
    assert lago.billable_metrics["licenses"]["recurring"] is True
    assert lago.billable_metrics["licenses"].get("weighted_interval") is None
    (charge,) = lago.plans["seats"]["charges"]
    assert charge["prorated"] is True


def test_filters_and_groups_are_refused_where_buckets_cannot_rate(client):
    """Filter buckets neither carry a recurring value over nor weight it by time: a charge
    pricing a weighted_sum or recurring metric by filter or group is refused, not rated
    wrong (or a 500 when the invoice is made)."""
    metric = {
        "code": "seats-by-region",
        "name": "Seats",
        "aggregation": "weighted_sum",
        "field_name": "seats",
        "filters": [{"key": "region", "values": ["eu", "us"]}],
    }
    assert client.post("/api/v1/billable_metrics/", metric, format="json").status_code == 201
    plan = {
        "code": "seats-plan",
        "name": "Seats",
        "interval": "monthly",
        "amount_cents": 0,
        "currency": "USD",
        "charges": [
            {
                "metric": "seats-by-region",
                "model": "standard",
                "properties": {"amount": "1"},
                "filters": [{"properties": {"amount": "2"}, "values": {"region": ["eu"]}}],
            }
        ],
    }
    grouped = {
        **plan,
        "code": "seats-grouped",
        "charges": [
            {
                "metric": "seats-by-region",
                "model": "standard",
                "properties": {"amount": "1", "pricing_group_keys": ["region"]},
            }
        ],
    }

    for body in (plan, grouped):
        response = client.post("/api/v1/plans/", body, format="json")
        assert response.status_code == 400, response.json()
        assert "not supported" in str(response.json())
