"""Prices, amounts and rates are bounded at the edge (hardening: money safeguards, item 2):
whatever a plan or an override accepts rates without an exception and fits a bigint."""

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.invoicing.charge_models import charge_amount_cents
from core.limits import MAX_DECIMAL_PLACES, MAX_UNIT_PRICE, MAX_USAGE_VALUE
from subscriptions.charges import validate_properties
from subscriptions.models import Charge, Plan, Subscription
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db
BIGINT = 2**63 - 1


def plan_body(properties_json: str, model: str = "standard") -> str:
    return (
        '{"code": "big", "name": "Big", "interval": "monthly", "amount_cents": 100, '
        f'"currency": "USD", "charges": [{{"metric": "api_calls", "model": "{model}", '
        f'"properties": {properties_json}}}]}}'
    )


def post_plan(client, body: str):
    return client.generic("POST", "/api/v1/plans/", body, content_type="application/json")


REFUSED_PRICES = [
    '"1e999999"',
    '"1e999999999"',
    '"NaN"',
    '"Infinity"',
    '"-1"',
    '"1e-30"',
    '"10001"',
]


@pytest.mark.parametrize("price", REFUSED_PRICES)
def test_plan_refuses_a_price_out_of_bounds(client, catalog, price):
    response = post_plan(client, plan_body(f'{{"amount": {price}}}'))
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["attr"].startswith("charges")
    assert not Plan.objects.filter(code="big").exists()


@pytest.mark.parametrize(
    ("key", "value"),
    [("per_unit_amount", '"1e999999"'), ("flat_amount", '"1e999999"'), ("flat_amount", '"NaN"')],
)
def test_plan_refuses_range_amounts_out_of_bounds(client, catalog, key, value):
    ranges = [{"from_value": 0, "to_value": None, "per_unit_amount": "1", "flat_amount": "0"}]
    body = json.dumps({"graduated_ranges": ranges}).replace(
        f'"{key}": "{ranges[0][key]}"', f'"{key}": {value}'
    )
    response = post_plan(client, plan_body(body, model="graduated"))
    assert response.status_code == 400, response.content
    assert not Plan.objects.filter(code="big").exists()


@pytest.mark.parametrize("amount_cents", ["9e24", "1000000000001", "-1", '"1e999999"'])
def test_plan_refuses_a_fixed_fee_out_of_bounds(client, catalog, amount_cents):
    body = plan_body('{"amount": "1"}').replace(
        '"amount_cents": 100', f'"amount_cents": {amount_cents}'
    )
    response = post_plan(client, body)
    assert response.status_code == 400, response.content
    assert not Plan.objects.filter(code="big").exists()


def test_the_largest_price_is_accepted_and_rates(client, catalog):
    response = post_plan(client, plan_body('{"amount": "10000"}'))
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("price", REFUSED_PRICES)
def test_overrides_refuse_a_price_out_of_bounds(client, catalog, price):
    SubscriptionFactory(external_id="sub-1", customer=catalog.acme, plan=catalog.pro)
    body = f'{{"overrides": {{"charges": {{"api_calls": {{"amount": {price}}}}}}}}}'
    response = client.generic(
        "PATCH", "/api/v1/subscriptions/sub-1/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert Subscription.objects.get(external_id="sub-1").overrides == {}
    usage = client.get("/api/v1/subscriptions/sub-1/usage/")
    assert usage.status_code == 200


def _decimals(limit: Decimal) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=-limit,
        max_value=limit,
        places=MAX_DECIMAL_PLACES,
        allow_nan=False,
        allow_infinity=False,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    price=_decimals(MAX_UNIT_PRICE).filter(lambda d: d >= 0),
    flat=_decimals(Decimal(10) ** 10).filter(lambda d: d >= 0),
    value=_decimals(MAX_USAGE_VALUE),
    model=st.sampled_from(["standard", "graduated", "volume", "package", "percentage"]),
    currency=st.sampled_from(["USD", "JPY", "EUR"]),
)
def test_any_accepted_price_times_any_accepted_value_fits_a_bigint(
    price, flat, value, model, currency
):
    properties = {
        "standard": {"amount": str(price)},
        "graduated": {
            "graduated_ranges": [
                {
                    "from_value": 0,
                    "to_value": 10,
                    "per_unit_amount": str(price),
                    "flat_amount": str(flat),
                },
                {
                    "from_value": 11,
                    "to_value": None,
                    "per_unit_amount": str(price),
                    "flat_amount": str(flat),
                },
            ]
        },
        "volume": {
            "volume_ranges": [
                {
                    "from_value": 0,
                    "to_value": None,
                    "per_unit_amount": str(price),
                    "flat_amount": str(flat),
                }
            ]
        },
        "package": {"amount": str(price), "package_size": 1, "free_units": 0},
        "percentage": {"rate": "100", "fixed_amount": str(price)},
    }[model]
    validate_properties(model, properties)  # accepted at the edge
    cents = charge_amount_cents(
        charge_model=model,
        properties=properties,
        units=abs(value),
        currency=currency,
        event_values=[abs(value)],
    )
    assert -BIGINT <= cents <= BIGINT
    assert Charge.Model(model)
