"""Tests of FakeLago itself: it must behave like Lago and hold traffic to the spec."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid

import jwt
import pytest
import requests

from .lago import FakeLago
from .lago_spec import default_spec_path

SPEC_PATH = default_spec_path()
if not SPEC_PATH.is_file():
    pytest.skip(
        f"Lago OpenAPI spec not found at {SPEC_PATH} (set LAGO_OPENAPI_SPEC)",
        allow_module_level=True,
    )

KEY = "lago-test-key"


@pytest.fixture(scope="module")
def server():
    fake = FakeLago(SPEC_PATH, api_key=KEY).start()
    yield fake
    fake.stop()


@pytest.fixture
def allow_violations():
    """Requested by tests that provoke violations on purpose."""


@pytest.fixture
def lago(server, request):
    server.reset()
    yield server
    # Every other test doubles as a contract test of the fake's own answers.
    if "allow_violations" not in request.fixturenames:
        assert server.violations == []


@pytest.fixture
def api(lago):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {KEY}"

    def call(method, path, json=None, params=None, timeout=5, **kwargs):
        return session.request(
            method, f"{lago.url}/api/v1{path}", json=json, params=params, timeout=timeout, **kwargs
        )

    yield call
    session.close()


def make_metric(api, code="api_calls", **extra):
    body = {"name": code, "code": code, "aggregation_type": "count_agg", **extra}
    response = api("POST", "/billable_metrics", {"billable_metric": body})
    assert response.status_code == 200, response.text
    return response.json()["billable_metric"]


def make_plan(api, code, amount_cents, metric=None, interval="monthly", **extra):
    plan = {
        "name": code,
        "code": code,
        "interval": interval,
        "amount_cents": amount_cents,
        "amount_currency": "EUR",
        "pay_in_advance": False,
        **extra,
    }
    if metric is not None:
        plan["charges"] = [
            {
                "billable_metric_id": metric["lago_id"],
                "charge_model": "standard",
                "properties": {"amount": "0.01"},
            }
        ]
    response = api("POST", "/plans", {"plan": plan})
    assert response.status_code == 200, response.text
    return response.json()["plan"]


def subscribe(api, plan_code, external_id="sub-1", customer="cust-1", **extra):
    body = {
        "external_customer_id": customer,
        "plan_code": plan_code,
        "external_id": external_id,
        **extra,
    }
    return api("POST", "/subscriptions", {"subscription": body})


def event(transaction_id, **extra):
    return {
        "transaction_id": transaction_id,
        "external_subscription_id": "sub-1",
        "code": "api_calls",
        **extra,
    }


# -- customers ---------------------------------------------------------------------


def test_customer_upsert_creates_then_updates(lago, api):
    created = api("POST", "/customers", {"customer": {"external_id": "c1", "name": "Ada"}})
    assert created.status_code == 200
    customer = created.json()["customer"]
    uuid.UUID(customer["lago_id"])
    assert customer["external_id"] == "c1" and customer["name"] == "Ada"
    assert lago.customers["c1"]["name"] == "Ada"

    updated = api(
        "POST",
        "/customers",
        {
            "customer": {
                "external_id": "c1",
                "email": "ada@example.com",
                "currency": "EUR",
                "metadata": [{"key": "tier", "value": "gold", "display_in_invoice": False}],
            }
        },
    )
    assert updated.status_code == 200
    again = updated.json()["customer"]
    assert again["lago_id"] == customer["lago_id"]
    assert again["name"] == "Ada" and again["email"] == "ada@example.com"
    assert len(lago.customers) == 1 and lago.customers["c1"]["currency"] == "EUR"
    assert api("GET", "/customers/c1").json()["customer"]["metadata"][0]["value"] == "gold"


@pytest.mark.parametrize(
    "body",
    [
        {"customer": {"name": "no external id"}},
        {"customer": {"external_id": 42}},
        {"customer": {"external_id": "c1", "currency": "EURO"}},
        {"external_id": "c1"},
    ],
)
def test_invalid_customer_body_is_a_spec_violation(lago, api, allow_violations, body):
    response = api("POST", "/customers", body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["status"] == 400 and payload["code"] == "spec_violation"
    assert payload["error"] == "spec_violation" and payload["error_details"]["message"]
    assert len(lago.violations) == 1 and "POST /api/v1/customers" in lago.violations[0]
    assert lago.customers == {}


def test_get_and_delete_customer(lago, api):
    missing = api("GET", "/customers/nobody")
    assert missing.status_code == 404
    assert missing.json() == {"status": 404, "error": "Not Found", "code": "customer_not_found"}
    api("POST", "/customers", {"customer": {"external_id": "c1"}})
    assert api("DELETE", "/customers/c1").json()["customer"]["external_id"] == "c1"
    assert api("GET", "/customers/c1").status_code == 404


def test_customer_pagination(lago, api):
    for i in range(5):
        api("POST", "/customers", {"customer": {"external_id": f"c{i}"}})
    first = api("GET", "/customers", params={"page": 1, "per_page": 2}).json()
    assert [c["external_id"] for c in first["customers"]] == ["c4", "c3"]  # newest first
    assert first["meta"] == {
        "current_page": 1,
        "next_page": 2,
        "prev_page": None,
        "total_pages": 3,
        "total_count": 5,
    }
    last = api("GET", "/customers", params={"page": 3, "per_page": 2}).json()
    assert [c["external_id"] for c in last["customers"]] == ["c0"]
    assert last["meta"]["next_page"] is None and last["meta"]["prev_page"] == 2
    beyond = api("GET", "/customers", params={"page": 9, "per_page": 2}).json()
    assert beyond["customers"] == [] and beyond["meta"]["prev_page"] is None


# -- auth and routing --------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}])
def test_auth_is_required(lago, headers):
    response = requests.get(f"{lago.url}/api/v1/customers", headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json() == {"status": 401, "error": "Unauthorized"}


def test_path_outside_the_spec_is_404_and_a_violation(lago, api, allow_violations):
    response = api("GET", "/customerz")
    assert response.status_code == 404 and response.json()["status"] == 404
    assert "Path not found" in lago.violations[0]


def test_spec_path_the_fake_does_not_implement_is_404(lago, api):
    response = api("GET", "/taxes")
    assert response.status_code == 404
    assert "not implemented by FakeLago" in response.json()["error_details"]["message"]


# -- billable metrics and plans ----------------------------------------------------


def test_billable_metric_crud(lago, api):
    metric = make_metric(api, "storage", aggregation_type="sum_agg", field_name="gb")
    assert lago.billable_metrics["storage"]["lago_id"] == metric["lago_id"]
    duplicate = api(
        "POST",
        "/billable_metrics",
        {"billable_metric": {"name": "x", "code": "storage", "aggregation_type": "count_agg"}},
    )
    assert duplicate.status_code == 422
    assert duplicate.json()["error_details"] == {"code": ["value_already_exist"]}
    renamed = api("PUT", "/billable_metrics/storage", {"billable_metric": {"code": "disk"}})
    assert renamed.json()["billable_metric"]["code"] == "disk"
    assert api("GET", "/billable_metrics/disk").json()["billable_metric"]["field_name"] == "gb"
    assert api("GET", "/billable_metrics").json()["meta"]["total_count"] == 1


def test_plan_charges_reference_metric_by_lago_id(lago, api):
    metric = make_metric(api)
    plan = make_plan(api, "pro", 4900, metric)
    assert plan["charges"][0]["billable_metric_code"] == "api_calls"
    assert lago.plans["pro"]["charges"][0]["lago_billable_metric_id"] == metric["lago_id"]

    unknown = api(
        "POST",
        "/plans",
        {
            "plan": {
                "name": "x",
                "code": "x",
                "interval": "monthly",
                "amount_cents": 1,
                "amount_currency": "EUR",
                "pay_in_advance": False,
                "charges": [{"billable_metric_id": str(uuid.uuid4()), "charge_model": "standard"}],
            }
        },
    )
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "billable_metric_not_found"

    updated = api("PUT", "/plans/pro", {"plan": {"amount_cents": 5900}}).json()["plan"]
    assert updated["amount_cents"] == 5900 and len(updated["charges"]) == 1
    assert api("DELETE", "/plans/pro").status_code == 200
    assert api("GET", "/plans/pro").status_code == 404


# -- subscriptions -----------------------------------------------------------------


def test_subscription_lifecycle(lago, api):
    make_plan(api, "basic", 1000)
    make_plan(api, "pro", 5000)
    created = subscribe(api, "basic")
    assert created.status_code == 200, created.text
    sub = created.json()["subscription"]
    assert sub["status"] == "active" and sub["plan"]["code"] == "basic"
    assert lago.customers["cust-1"]["currency"] == "EUR"  # created on the fly

    upgraded = subscribe(api, "pro").json()["subscription"]  # same external_id, new plan
    assert upgraded["plan_code"] == "pro" and upgraded["previous_plan_code"] == "basic"
    assert lago.subscriptions["sub-1"]["plan_code"] == "pro"

    downgraded = subscribe(api, "basic").json()["subscription"]
    assert downgraded["plan_code"] == "pro" and downgraded["next_plan_code"] == "basic"
    assert downgraded["downgrade_plan_date"]

    listed = api("GET", "/subscriptions", params={"external_customer_id": "cust-1"}).json()
    assert [s["plan_code"] for s in listed["subscriptions"]] == ["pro"]  # active only
    everything = api(
        "GET",
        "/subscriptions",
        params={"external_customer_id": "cust-1", "status[]": ["active", "pending", "terminated"]},
    ).json()
    assert sorted(s["status"] for s in everything["subscriptions"]) == [
        "active",
        "pending",
        "terminated",
    ]

    terminated = api("DELETE", "/subscriptions/sub-1").json()["subscription"]
    assert terminated["status"] == "terminated" and terminated["terminated_at"]
    assert api("GET", "/subscriptions/sub-1").status_code == 404
    assert lago.subscriptions["sub-1"]["status"] == "terminated"


def test_unknown_subscription_status_filter_is_a_spec_violation(lago, api, allow_violations):
    assert api("GET", "/subscriptions", params={"status[]": "bogus"}).status_code == 400
    assert "status[]" in lago.violations[0]


def test_subscription_to_unknown_plan_is_404(lago, api):
    response = subscribe(api, "nope")
    assert response.status_code == 404 and response.json()["code"] == "plan_not_found"


# -- events ------------------------------------------------------------------------


def test_single_event_and_duplicate(lago, api):
    first = api("POST", "/events", {"event": event("t1", properties={"count": 3})})
    assert first.status_code == 200, first.text
    assert first.json()["event"]["transaction_id"] == "t1"
    assert lago.events["t1"]["properties"] == {"count": 3}  # an integer: relaxed oneOf
    again = api("POST", "/events", {"event": event("t1")})
    assert again.status_code == 422
    assert again.json() == {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": {"transaction_id": ["value_already_exist"]},
    }


def test_batch_with_a_duplicate_is_rejected_whole(lago, api):
    api("POST", "/events", {"event": event("t1")})
    batch = [event("t2", timestamp=1_700_000_000), event("t1"), event("t3")]
    response = api("POST", "/events/batch", {"events": batch})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_errors"
    assert body["error_details"] == {"1": {"transaction_id": ["value_already_exist"]}}
    assert set(lago.events) == {"t1"}

    in_batch = api("POST", "/events/batch", {"events": [event("t4"), event("t4")]})
    assert in_batch.status_code == 422 and set(lago.events) == {"t1"}

    ok = api("POST", "/events/batch", {"events": [event("t2"), event("t3")]})
    assert ok.status_code == 200 and set(lago.events) == {"t1", "t2", "t3"}
    too_many = api("POST", "/events/batch", {"events": [event(f"x{i}") for i in range(101)]})
    assert too_many.json()["error_details"] == {"events": ["too_many_events"]}


def test_event_with_wrong_types_is_a_spec_violation(lago, api, allow_violations):
    response = api("POST", "/events", {"event": {"transaction_id": "t1", "code": 5}})
    assert response.status_code == 400 and lago.events == {}
    assert "external_subscription_id" in lago.violations[0]


def test_concurrent_requests(lago, api):
    def send(i):
        assert api("POST", "/events", {"event": event(f"c{i}")}).status_code == 200

    threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(lago.events) == 20 and len(lago.requests) == 20


# -- fault injection ---------------------------------------------------------------


def test_fail_next(lago, api):
    lago.fail_next(2, status=503)
    assert api("GET", "/customers").status_code == 503
    failed = api("GET", "/customers")
    assert failed.status_code == 503 and failed.json()["status"] == 503
    assert api("GET", "/customers").status_code == 200


def test_fail_next_applies_to_path_prefix_only(lago, api):
    lago.fail_next(path_prefix="/events")
    assert api("GET", "/customers").status_code == 200
    assert api("POST", "/events", {"event": event("t1")}).status_code == 500
    assert lago.events == {}  # a failed request is not applied
    assert api("POST", "/events", {"event": event("t1")}).status_code == 200


def test_rate_limit_next(lago, api):
    lago.rate_limit_next(retry_after=7)
    limited = api("POST", "/customers", {"customer": {"external_id": "c1"}})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert limited.json()["status"] == 429 and limited.json()["code"] == "too_many_requests"
    assert lago.customers == {}
    assert api("POST", "/customers", {"customer": {"external_id": "c1"}}).status_code == 200


def test_delay_next_times_out_client_but_is_applied(lago, api):
    lago.delay_next(seconds=1.0, path_prefix="/api/v1/events")
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        api("POST", "/events", {"event": event("slow")}, timeout=0.3)
    assert time.monotonic() - started < 0.9
    deadline = time.monotonic() + 5
    while "slow" not in lago.events and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "slow" in lago.events
    assert api("POST", "/events", {"event": event("fast")}, timeout=0.5).status_code == 200


def test_reset_clears_everything(lago, api):
    api("POST", "/customers", {"customer": {"external_id": "c1"}})
    lago.fail_next(5)
    lago.reset()
    assert lago.customers == {} and lago.requests == [] and lago.violations == []
    assert api("GET", "/customers").status_code == 200


# -- recording, response validation, webhooks -------------------------------------


def test_requests_are_recorded(lago, api):
    api(
        "GET",
        "/subscriptions",
        params={"external_customer_id": "c1", "status[]": ["active", "pending"]},
    )
    recorded = lago.requests[-1]
    assert recorded["method"] == "GET" and recorded["path"] == "/api/v1/subscriptions"
    assert recorded["query"] == {"external_customer_id": ["c1"], "status[]": ["active", "pending"]}
    assert recorded["json"] is None and recorded["headers"]["Authorization"] == f"Bearer {KEY}"


def test_bad_response_is_recorded_but_sent(lago, api, allow_violations):
    api("POST", "/customers", {"customer": {"external_id": "c1"}})
    lago.customers["c1"]["sequential_id"] = "not-an-integer"  # corrupt the fake's state
    response = api("GET", "/customers/c1")
    assert response.status_code == 200
    assert any("response 200 to GET /api/v1/customers/c1" in v for v in lago.violations)


def test_webhook_public_key_verifies_signatures(lago, api):
    response = api("GET", "/webhooks/json_public_key")
    public_pem = base64.b64decode(response.json()["webhook"]["public_key"])
    payload = json.dumps({"webhook_type": "invoice.created"})
    token = jwt.encode({"data": payload, "iss": lago.url}, lago.private_key_pem, algorithm="RS256")
    claims = jwt.decode(token, public_pem, algorithms=["RS256"], issuer=lago.url)
    assert claims["data"] == payload
