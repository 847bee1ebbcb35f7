"""Bad input answers a 4xx in the one error shape, never a 500 (the hardening issue):
each case is sent through the real endpoint, as a caller or a provider would send it."""

import json
import uuid

import pytest

from tests.factories import SubscriptionFactory
from tests.helpers.signing import LAGO_HMAC_KEY, STRIPE_SECRET, lago_hmac, stripe_signature

pytestmark = pytest.mark.django_db


def assert_error_shape(response, status: int | tuple[int, ...]) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.content[:300])
    body = response.json()
    assert body["type"] in ("validation_error", "client_error")
    assert body["errors"] and {"code", "detail", "attr"} <= set(body["errors"][0])
    return body


# --- Usage timestamps that look like dates but are not ----------------------------------
@pytest.mark.parametrize("timestamp", ["2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z"])
def test_an_impossible_usage_timestamp_is_a_field_error(client, catalog, timestamp):
    sub = SubscriptionFactory(customer=catalog.acme, plan=catalog.pro)
    event = {"transaction_id": "t1", "subscription": sub.external_id, "metric": "api_calls"}

    response = client.post("/api/v1/usage/", {**event, "timestamp": timestamp}, format="json")

    body = assert_error_shape(response, 400)
    assert body["errors"][0]["attr"] == "timestamp"


def test_an_impossible_timestamp_rejects_only_its_own_event_in_a_batch(client, catalog):
    sub = SubscriptionFactory(customer=catalog.acme, plan=catalog.pro)
    base = {"subscription": sub.external_id, "metric": "api_calls"}
    events = [
        {**base, "transaction_id": "bad", "timestamp": "2026-02-30T00:00:00Z"},
        {**base, "transaction_id": "good"},
    ]

    response = client.post("/api/v1/usage/batch/", {"events": events}, format="json")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["invalid", "created"]
    assert results[0]["errors"][0]["attr"] == "timestamp"


# --- NUL in a path segment or a filter --------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/customers/a%00b/",
        "/api/v1/plans/a%00b/",
        "/api/v1/billable_metrics/a%00b/",
        "/api/v1/subscriptions/a%00b/",
        "/api/v1/subscriptions/a%00b/usage/",
        "/api/v1/customers/acme/payment_methods/?status=%00",
        "/api/v1/customers/?search=%00",
        "/api/v1/subscriptions/?customer=%00",
    ],
)
def test_nul_in_a_path_or_a_filter_is_refused(client, catalog, path):
    assert_error_shape(client.get(path), (400, 404))


# --- Bodies too deep or too big ---------------------------------------------------------
def test_json_nested_100000_deep_is_a_400(client):
    body = "[" * 100_000 + "]" * 100_000

    response = client.post("/api/v1/customers/", body, content_type="application/json")

    assert_error_shape(response, 400)


def test_a_20_mb_body_is_refused_in_the_error_shape(client):
    body = json.dumps({"external_id": "big", "name": "x" * (20 * 1024 * 1024)})

    response = client.post("/api/v1/customers/", body, content_type="application/json")

    assert_error_shape(response, (400, 413))


# --- Unknown /api/ paths and the index --------------------------------------------------
def test_an_unknown_api_path_is_a_json_404_even_in_debug(client, settings):
    settings.DEBUG = True

    response = client.get("/api/v1/no-such-thing/")

    assert response["Content-Type"].startswith("application/json")
    assert_error_shape(response, 404)


def test_the_api_root_is_an_index_of_the_resources(client):
    response = client.get("/api/v1/")

    assert response.status_code == 200
    resources = response.json()["resources"]
    assert {"customers", "plans", "subscriptions", "usage", "invoices"} <= set(resources)


def test_the_api_index_needs_a_key(anonymous_client):
    assert_error_shape(anonymous_client.get("/api/v1/"), 401)


# --- Signed webhooks whose fields have the wrong type ----------------------------------
@pytest.fixture
def webhook_secrets(settings):
    settings.STRIPE_WEBHOOK_SECRET = [STRIPE_SECRET]
    settings.LAGO_WEBHOOK_HMAC_KEY = LAGO_HMAC_KEY


def _stripe(**overrides) -> dict:
    event = {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": "customer.updated",
        "created": 1_767_225_600,
        "data": {"object": {"id": "cus_1", "object": "customer"}},
    }
    return {**event, **overrides}


@pytest.mark.parametrize(
    "payload",
    [
        _stripe(type={"nested": "object"}),
        _stripe(created=1e20),
        _stripe(created=10**20),
        _stripe(data="a string"),
        _stripe(data={"object": "a string"}),
        _stripe(id=["a", "list"]),
    ],
    ids=["type-object", "created-1e20", "created-int-10e20", "data-string", "object-str", "id"],
)
def test_a_signed_stripe_webhook_of_the_wrong_types_is_not_a_500(
    anonymous_client, webhook_secrets, payload
):
    body = json.dumps(payload).encode()

    response = anonymous_client.post(
        "/webhooks/stripe/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe_signature(body),
    )

    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        # Its signature was right: the sender is told the body is what is wrong.
        assert assert_error_shape(response, 400)["errors"][0]["code"] == "invalid_payload"


@pytest.mark.parametrize(
    "obj",
    [
        {"lago_id": "l1", "external_id": "acme", "updated_at": "2026-02-30T00:00:00Z"},
        {"lago_id": "l1", "external_id": "acme", "created_at": "2026-13-45T99:00:00Z"},
        {"lago_id": "l1", "external_id": "acme", "updated_at": 12},
    ],
)
def test_a_signed_lago_webhook_with_an_invalid_date_is_not_a_500(
    anonymous_client, webhook_secrets, obj
):
    body = json.dumps(
        {"webhook_type": "customer.updated", "object_type": "customer", "customer": obj}
    ).encode()

    response = anonymous_client.post(
        "/webhooks/lago/",
        data=body,
        content_type="application/json",
        HTTP_X_LAGO_SIGNATURE=lago_hmac(body),
        HTTP_X_LAGO_SIGNATURE_ALGORITHM="hmac",
        HTTP_X_LAGO_UNIQUE_KEY=str(uuid.uuid4()),
    )

    assert response.status_code < 500, response.content[:300]


# --- external_id alphabet ---------------------------------------------------------------
@pytest.mark.parametrize("external_id", ["victim?x", "a b", "a/b", "../x", "-x", "a#b", "a%00"])
def test_an_external_id_outside_the_alphabet_is_refused(client, catalog, external_id):
    customer = client.post(
        "/api/v1/customers/", {"external_id": external_id, "currency": "USD"}, format="json"
    )
    subscription = client.post(
        "/api/v1/subscriptions/",
        {"external_id": external_id, "customer": "acme", "plan": "pro"},
        format="json",
    )

    for response in (customer, subscription):
        body = assert_error_shape(response, 400)
        assert body["errors"][0]["attr"] == "external_id"


@pytest.mark.parametrize("external_id", ["acme", "cus_1:a@b.c-d", "0", "x" * 255])
def test_an_external_id_in_the_alphabet_is_accepted(client, external_id):
    response = client.post(
        "/api/v1/customers/", {"external_id": external_id, "currency": "USD"}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert client.get(f"/api/v1/customers/{external_id}/").status_code == 200


# --- Found by the fuzz test (test_fuzz.py) ---------------------------------------------
def test_a_lone_surrogate_in_a_json_string_is_a_400(client, catalog):
    body = '{"external_id": "s1", "customer": "\\ud800", "plan": "pro"}'

    response = client.post("/api/v1/subscriptions/", body, content_type="application/json")

    assert_error_shape(response, 400)


def test_nul_in_a_reference_to_another_object_is_a_field_error(client, catalog):
    response = client.post(
        "/api/v1/subscriptions/",
        {"external_id": "s1", "customer": "a\x00b", "plan": "pro"},
        format="json",
    )

    body = assert_error_shape(response, 400)
    assert body["errors"][0]["attr"] == "customer"


def test_a_signed_webhook_nested_100000_deep_is_a_400(anonymous_client, webhook_secrets):
    body = ("[" * 100_000 + "]" * 100_000).encode()

    response = anonymous_client.post(
        "/webhooks/stripe/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe_signature(body),
    )

    assert_error_shape(response, 400)


def test_djangos_own_refusals_use_the_error_shape_for_api_callers(anonymous_client, settings):
    # A disallowed Host is refused by Django before any view: handler400 answers.
    settings.ALLOWED_HOSTS = ["testserver"]
    response = anonymous_client.get("/api/v1/customers/", HTTP_HOST="evil.example")

    assert_error_shape(response, 400)


# --- Errors name the field and the value ------------------------------------------------
def test_a_single_usage_event_names_its_fields_as_a_batch_does(client, catalog):
    sub = SubscriptionFactory(customer=catalog.acme, plan=catalog.pro)
    bad = {"subscription": sub.external_id, "metric": "", "properties": []}

    single = client.post("/api/v1/usage/", bad, format="json")
    batch = client.post("/api/v1/usage/batch/", {"events": [bad]}, format="json")

    body = assert_error_shape(single, 400)
    assert body["errors"] == batch.json()["results"][0]["errors"]
    assert [(e["attr"], e["code"]) for e in body["errors"]] == [
        ("transaction_id", "required"),
        ("metric", "required"),
        ("properties", "invalid"),
    ]


def test_a_single_usage_event_the_domain_refuses_names_the_field_and_the_value(client, catalog):
    sub = SubscriptionFactory(customer=catalog.acme, plan=catalog.pro)
    event = {"transaction_id": "t1", "subscription": sub.external_id, "metric": "api_calls"}
    assert client.post("/api/v1/usage/", event, format="json").status_code == 201

    reused = client.post("/api/v1/usage/", {**event, "properties": {"a": 1}}, format="json")
    unknown = client.post(
        "/api/v1/usage/", {**event, "transaction_id": "t2", "metric": "nope"}, format="json"
    )

    error = assert_error_shape(reused, 409)["errors"][0]
    assert (error["code"], error["attr"]) == ("transaction_id_conflict", "transaction_id")
    assert assert_error_shape(unknown, 422)["errors"] == [
        {
            "code": "unknown_metric",
            "detail": "No billable metric with code 'nope'.",
            "attr": "metric",
        }
    ]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/usage/", [1]),
        ("/api/v1/invoices/generate/", {"subscription": "s", "period_start": "2026-10-01T00:00Z"}),
    ],
)
def test_an_error_about_the_whole_request_has_a_null_attr(client, path, body):
    # DRF calls such errors `non_field_errors`: not a field a caller could look for.
    error = assert_error_shape(client.post(path, body, format="json"), 400)["errors"][0]

    assert error["attr"] is None


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/api/v1/customers/ghost/", "No customer with external_id 'ghost'."),
        ("/api/v1/plans/ghost/", "No plan with code 'ghost'."),
        ("/api/v1/billable_metrics/ghost/", "No billable metric with code 'ghost'."),
        ("/api/v1/subscriptions/ghost/usage/", "No subscription with external_id 'ghost'."),
        ("/api/v1/invoices/ghost/", "No invoice with id 'ghost'."),
        (
            "/api/v1/customers/acme/payment_methods/00000000-0000-0000-0000-000000000000/set_default/",
            "No payment method with id '00000000-0000-0000-0000-000000000000' of customer 'acme'.",
        ),
    ],
)
def test_a_404_names_what_was_looked_for(client, catalog, path, detail):
    response = client.post(path) if path.endswith("set_default/") else client.get(path)

    assert assert_error_shape(response, 404)["errors"][0]["detail"] == detail


def test_an_unknown_reference_in_a_body_names_its_kind_and_value(client, catalog):
    response = client.post(
        "/api/v1/subscriptions/",
        {"external_id": "s1", "customer": "ghost", "plan": "pro"},
        format="json",
    )

    error = assert_error_shape(response, 400)["errors"][0]
    assert error == {
        "code": "does_not_exist",
        "detail": "No customer with external_id 'ghost'.",
        "attr": "customer",
    }
