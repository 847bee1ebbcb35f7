"""The API reads and writes JSON with orjson (core.parsers, core.renderers): what it
accepts, refuses and answers is what the standard library path gave, only faster."""

import datetime
import decimal
import json
import uuid

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer

from billing.usage.models import UsageRecord
from core.renderers import render_json
from tests.factories import SubscriptionFactory

URL = "/api/v1/usage/"


@pytest.fixture
def subscribed(catalog):
    return SubscriptionFactory(external_id="sub-1", customer=catalog.acme, plan=catalog.pro)


def post(client, body: str):
    return client.generic("POST", URL, body, content_type="application/json")


def event_body(properties: str, tid: str = "t-1") -> str:
    return (
        f'{{"transaction_id": "{tid}", "subscription": "sub-1", "metric": "tokens", '
        f'"properties": {properties}}}'
    )


@pytest.mark.django_db
def test_an_integer_past_64_bits_is_stored_exactly(client, subscribed):
    # orjson would read it as a float; such a body takes the exact parser.
    response = post(client, event_body('{"tokens": 5, "trace": 123456789012345678901234567}'))

    assert response.status_code == 201, response.content
    assert json.loads(response.content)["properties"]["trace"] == 123456789012345678901234567
    record = UsageRecord.objects.get()
    assert record.properties["trace"] == 123456789012345678901234567


@pytest.mark.django_db
@pytest.mark.parametrize(
    "properties",
    [
        '{"tokens": 1e999}',  # orjson's path
        '{"tokens": 1e999, "trace": 123456789012345678901234567}',  # the exact path
        '{"tokens": NaN}',
        '{"tokens": 5, "note": "\\ud800"}',
        '{"tokens": 5,}',
    ],
)
def test_what_is_not_json_we_can_store_is_a_400_on_either_path(client, subscribed, properties):
    response = post(client, event_body(properties))

    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["code"] == "parse_error"
    assert not UsageRecord.objects.exists()


@pytest.mark.django_db
def test_invalid_utf8_is_a_400(client, subscribed):
    response = client.generic(
        "POST", URL, event_body('{"tokens": 5}').encode()[:-3] + b'\xff"}}', "application/json"
    )

    assert response.status_code == 400, response.content


def test_the_renderer_writes_what_drfs_renderer_writes():
    data = {
        "at": datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.UTC),
        "day": datetime.date(2026, 1, 1),
        "amount": decimal.Decimal("1.50"),
        "id": uuid.UUID("a0a36739-b17e-4472-8a22-9ab80935fe8e"),
        "lazy": gettext_lazy("Hello"),
        "error": ErrorDetail("x", code="y"),
        1: [1.5, None, True, "é", (1, 2)],
        "big": 2**70,  # past orjson: DRF's renderer writes it
    }

    assert render_json(data) == DRFJSONRenderer().render(data)
    del data["big"]
    assert render_json(data) == DRFJSONRenderer().render(data)
    assert render_json(None) == b""


@pytest.mark.django_db
def test_an_idempotent_replay_is_the_first_answer_byte_for_byte(client, subscribed):
    headers = {"HTTP_IDEMPOTENCY_KEY": "k-1"}
    body = event_body('{"tokens": 2.5}')

    first = client.generic("POST", URL, body, content_type="application/json", **headers)
    again = client.generic("POST", URL, body, content_type="application/json", **headers)

    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
