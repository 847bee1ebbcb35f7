"""What charge properties are accepted (subscriptions.charges.validate_properties, used
by the API, the admin and overrides), against Lago's validators
(app/services/charges/validators/*.rb, Validators::RangeBoundsValidator)."""

import pytest
from django.core.exceptions import ValidationError

from subscriptions import services
from subscriptions.charges import validate_properties
from tests.factories import BillableMetricFactory, ChargeFactory, PlanFactory


def ranges(*bounds, keys=("per_unit_amount", "flat_amount")):
    return [{"from_value": a, "to_value": b, **dict.fromkeys(keys, "1")} for a, b in bounds]


@pytest.mark.parametrize(
    ("model", "properties"),
    [
        # charges/validators/graduated_service_spec.rb "with decimal adjacent ranges"
        ("graduated", {"graduated_ranges": ranges((0, 0.1), (0.1, 1), (1, None))}),
        ("graduated", {"graduated_ranges": ranges((0, 10), (11, 20), (21, None))}),
        ("graduated", {"graduated_ranges": ranges((0, 0.5), (1.5, None))}),
        (
            "graduated_percentage",
            {
                "graduated_percentage_ranges": ranges(
                    (0, 10), (11, 20.5), (21.5, None), keys=("rate", "flat_amount")
                )
            },
        ),
        ("volume", {"volume_ranges": ranges((0, 10), (11, None))}),
        ("dynamic", {}),
    ],
)
def test_accepted(model, properties):
    assert validate_properties(model, properties) == properties


@pytest.mark.parametrize(
    ("model", "properties", "message"),
    [
        # graduated_service_spec.rb "with decimal adjacent ranges that have a gap"
        ("graduated", {"graduated_ranges": ranges((0, 0.1), (0.5, None))}, "contiguous"),
        # adjacent then one past: Lago would count a unit twice (adjacent_ranges? is all
        # or nothing)
        ("graduated", {"graduated_ranges": ranges((0, 1), (1, 5), (6, None))}, "not both"),
        ("graduated", {"graduated_ranges": ranges(("0", 10), (11, None))}, "a number"),
        ("graduated", {"graduated_ranges": ranges((0, True), (2, None))}, "a number"),
        ("graduated", {"graduated_ranges": ranges((0, 1e-13), (1, None))}, "decimal places"),
        # volume: Lago finds the range by ceil(units); a decimal bound leaves a gap
        ("volume", {"volume_ranges": ranges((0, 0.5), (1.5, None))}, "integer"),
        ("volume", {"volume_ranges": ranges((0, 10), (10, None))}, "contiguous"),
        # graduated_percentage prices from..to inclusive: adjacent would count twice
        (
            "graduated_percentage",
            {
                "graduated_percentage_ranges": ranges(
                    (0, 10), (10, None), keys=("rate", "flat_amount")
                )
            },
            "contiguous",
        ),
        (
            "graduated_percentage",
            {"graduated_percentage_ranges": ranges((0, None))},
            "rate must be a decimal",
        ),
        ("dynamic", {"amount": "1"}, "do not take"),
        # charges/validators/percentage_service.rb: a positive integer
        ("percentage", {"rate": "1", "free_units_per_events": 0}, "from 1"),
    ],
)
def test_refused(model, properties, message):
    with pytest.raises(ValidationError, match=message):
        validate_properties(model, properties)


@pytest.mark.parametrize(
    ("model", "aggregation", "properties"),
    [
        ("dynamic", "count", {}),  # Charge#validate_dynamic: sum_agg only
        ("dynamic", "max", {}),
        ("percentage", "latest", {"rate": "1"}),  # no latest_agg
        (
            "graduated_percentage",
            "latest",
            {"graduated_percentage_ranges": ranges((0, None), keys=("rate", "flat_amount"))},
        ),
    ],
)
def test_refused_for_the_metric(model, aggregation, properties):
    with pytest.raises(ValidationError, match="aggregated by"):
        validate_properties(model, properties, aggregation=aggregation)


@pytest.mark.django_db
def test_the_api_refuses_a_dynamic_charge_on_a_count_metric(client):
    BillableMetricFactory(code="calls", aggregation="count", field_name="")
    body = {
        "code": "dyn",
        "name": "Dyn",
        "interval": "monthly",
        "amount_cents": 0,
        "currency": "USD",
        "charges": [{"metric": "calls", "model": "dynamic", "properties": {}}],
    }
    response = client.post("/api/v1/plans/", body, format="json")
    assert response.status_code == 400, response.json()
    assert "aggregated by sum" in str(response.json())


@pytest.mark.django_db
def test_a_metric_cannot_change_to_an_aggregation_its_charges_cannot_rate():
    metric = BillableMetricFactory(code="llm", aggregation="sum", field_name="tokens")
    ChargeFactory(plan=PlanFactory(code="p"), metric=metric, charge_model="dynamic", properties={})
    with pytest.raises(ValidationError, match="aggregated by sum"):
        services.metric_update(metric=metric, aggregation="max")
