"""Usage values that would break or lower a bill are refused at the edge (hardening:
money safeguards, items 2 and 3): every accepted value fits numeric(38, 12) and, times
the largest price, a bigint of minor units; negative values only for metrics made for
corrections."""

import json

import pytest

from billing.usage.models import UsageRecord
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/usage/"


@pytest.fixture
def subscribed(catalog):
    return SubscriptionFactory(external_id="sub-1", customer=catalog.acme, plan=catalog.pro)


def event(value, tid="t-1"):
    return {
        "transaction_id": tid,
        "subscription": "sub-1",
        "metric": "tokens",
        "properties": {"tokens": value},
    }


def post_raw(client, path: str, body: str):
    # Raw JSON, so that literals Python's json cannot write (1e999999999, NaN) go as sent.
    return client.generic("POST", path, body, content_type="application/json")


REFUSED = [
    ("9e24", "value_out_of_range"),
    ("-9e25", "value_out_of_range"),
    ('"1e999999999"', "value_out_of_range"),
    ('"1e-30"', "value_out_of_range"),
    ('"NaN"', "value_out_of_range"),
    ('"Infinity"', "value_out_of_range"),
    ('"-Infinity"', "value_out_of_range"),
    ("1000000000001", "value_out_of_range"),
    ("-500", "negative_value_not_allowed"),
    ('"-0.000001"', "negative_value_not_allowed"),
]


@pytest.mark.parametrize("literal", ["1e999", "1e999999", "-1e999999999"])
def test_a_number_past_a_double_is_not_json_we_read(client, subscribed, literal):
    # Read as infinity it could be neither rated nor stored: the body is refused whole.
    body = json.dumps(event(0)).replace('"tokens": 0', f'"tokens": {literal}')
    response = post_raw(client, URL, body)
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["code"] == "parse_error"
    assert not UsageRecord.objects.exists()


@pytest.mark.parametrize(("literal", "code"), REFUSED)
def test_out_of_range_values_are_422(client, subscribed, literal, code):
    body = json.dumps(event(0)).replace('"tokens": 0', f'"tokens": {literal}')
    response = post_raw(client, URL, body)
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["code"] == code
    assert response.json()["errors"][0]["attr"] == "properties.tokens"
    assert not UsageRecord.objects.exists()


@pytest.mark.parametrize(("literal", "code"), REFUSED)
def test_out_of_range_values_are_invalid_in_a_batch(client, subscribed, literal, code):
    good = json.dumps(event(5, tid="ok"))
    bad = json.dumps(event(0, tid="bad")).replace('"tokens": 0', f'"tokens": {literal}')
    response = post_raw(client, f"{URL}batch/", f'{{"events": [{good}, {bad}]}}')
    assert response.status_code == 200, response.content
    results = {r["transaction_id"]: r for r in response.json()["results"]}
    assert results["ok"]["status"] == "created"
    assert results["bad"]["status"] == "invalid"
    assert results["bad"]["errors"][0]["code"] == code
    assert list(UsageRecord.objects.values_list("transaction_id", flat=True)) == ["ok"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_json_numbers_are_refused_by_the_parser(client, subscribed, literal):
    body = json.dumps(event(0)).replace('"tokens": 0', f'"tokens": {literal}')
    response = post_raw(client, URL, body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "parse_error"
    assert post_raw(client, f"{URL}batch/", f'{{"events": [{body}]}}').status_code == 400
    assert not UsageRecord.objects.exists()


@pytest.mark.parametrize(
    ("literal", "stored"),
    [("-0", "0"), ("1000000000000", "1000000000000"), ('"0.000000000001"', "0.000000000001")],
)
def test_the_extremes_that_fit_are_stored_and_rated(client, subscribed, literal, stored):
    body = json.dumps(event(0)).replace('"tokens": 0', f'"tokens": {literal}')
    response = post_raw(client, URL, body)
    assert response.status_code == 201, response.content
    assert UsageRecord.objects.get().value == type(UsageRecord.objects.get().value)(stored)
    usage = client.get("/api/v1/subscriptions/sub-1/usage/")
    assert usage.status_code == 200, usage.content


def test_negative_values_only_for_a_metric_that_allows_them(client, subscribed, catalog):
    assert post_raw(client, URL, json.dumps(event(-500))).status_code == 422
    patched = client.patch(
        "/api/v1/billable_metrics/tokens/", {"negative_values_allowed": True}, format="json"
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["negative_values_allowed"] is True
    response = post_raw(client, URL, json.dumps(event(-500)))
    assert response.status_code == 201, response.content
    assert str(UsageRecord.objects.get().value) == "-500.000000000000"


def test_metrics_refuse_negative_values_by_default(client):
    created = client.post(
        "/api/v1/billable_metrics/",
        {"code": "credits", "name": "Credits", "aggregation": "sum", "field_name": "n"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["negative_values_allowed"] is False
