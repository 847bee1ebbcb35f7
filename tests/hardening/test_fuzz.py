"""Generated requests at the usage, customer and subscription endpoints: any answer is a
2xx or a 4xx in the error shape, never a 5xx.

Hypothesis strategies rather than schemathesis: hypothesis is already pinned, runs in
process through DRF's test client inside the test's database transaction (so the catalog
fixture and the API key just work), and lets the bodies be deliberately *off*-schema
(wrong types, NUL, lone surrogates, deep nesting, impossible dates), which is where the
500s were. `derandomize=True` makes every run try the same examples (CI-stable); the
example counts keep the whole module near 20 s.
"""

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text a careless or hostile caller sends: any code point (NUL, controls, lone
# surrogates), plus a few hand-picked values known to have broken parsers.
nasty_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b",
            "\ud800",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "9999-12-31T23:59:59+23:59",
            "0000-01-01",
            "victim?x",
            "../..",
            "%00",
            "1e400",
            "NaN",
            "x" * 300,
        ]
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    nasty_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4),
    max_leaves=12,
)
timestamps = st.one_of(
    nasty_text,
    st.datetimes().map(lambda moment: moment.isoformat() + "Z"),
    json_values,
)


def body_of(**fields):
    """A dict with any subset of `fields`, each drawn from its strategy or any JSON."""
    return st.fixed_dictionaries(
        {}, optional={name: st.one_of(strategy, json_values) for name, strategy in fields.items()}
    )


usage_event = body_of(
    transaction_id=nasty_text,
    subscription=st.sampled_from(["fuzz-sub", "nope"]) | nasty_text,
    metric=st.sampled_from(["api_calls", "tokens"]) | nasty_text,
    timestamp=timestamps,
    properties=st.dictionaries(st.sampled_from(["tokens"]) | nasty_text, json_values, max_size=3),
)
customer_body = body_of(
    external_id=nasty_text,
    name=nasty_text,
    email=nasty_text,
    currency=st.sampled_from(["USD", "EUR", "usd", "XXX"]) | nasty_text,
    country=nasty_text,
    metadata=json_values,
)
subscription_body = body_of(
    external_id=nasty_text,
    customer=st.just("acme") | nasty_text,
    plan=st.sampled_from(["pro", "starter"]) | nasty_text,
    billing_time=st.sampled_from(["calendar", "anniversary"]) | nasty_text,
    start_at=timestamps,
    bill_past_periods=json_values,
    overrides=json_values,
)
# A URL carries bytes, not code points: a lone surrogate cannot be sent, but invalid
# UTF-8 (already percent-encoded here) can.
url_text = nasty_text.filter(lambda text: "\ud800" not in text)
segments = url_text.filter(bool).map(lambda text: quote(text, safe="")) | st.sampled_from(
    ["%FF", "%ED%A0%80", "%C0%AF", "a%2Fb", "%2E%2E"]
)
queries = st.dictionaries(
    st.sampled_from(
        [
            "subscription",
            "metric",
            "from",
            "to",
            "customer",
            "status",
            "plan",
            "search",
            "email",
            "country",
            "created_after",
            "page_size",
            "cursor",
        ]
    ),
    url_text,
    max_size=4,
)


def send(client, method: str, path: str, body=None, query=None):
    encoded = json.dumps(body) if body is not None else None
    response = getattr(client, method)(
        path, data=encoded if method != "get" else query, content_type="application/json"
    )
    assert response.status_code < 500, (method, path, body, query, response.content[:500])
    if response.status_code >= 400:
        error = response.json()
        assert error["type"] in ("validation_error", "client_error"), error
        assert all({"code", "detail", "attr"} <= set(e) for e in error["errors"]), error
    return response


@pytest.fixture
def fuzz_subscription(catalog):
    return SubscriptionFactory(external_id="fuzz-sub", customer=catalog.acme, plan=catalog.pro)


@FUZZ
@given(event=usage_event | json_values)
def test_usage_never_answers_5xx(client, fuzz_subscription, event):
    send(client, "post", "/api/v1/usage/", event)


@FUZZ
@given(events=st.lists(usage_event | json_values, max_size=5) | json_values)
def test_usage_batch_never_answers_5xx(client, fuzz_subscription, events):
    send(client, "post", "/api/v1/usage/batch/", {"events": events})


@FUZZ
@given(body=customer_body | json_values, segment=segments)
def test_customers_never_answer_5xx(client, catalog, body, segment):
    send(client, "post", "/api/v1/customers/", body)
    send(client, "patch", "/api/v1/customers/acme/", body)
    send(client, "get", f"/api/v1/customers/{segment}/")
    send(client, "get", f"/api/v1/customers/{segment}/payment_methods/")


@FUZZ
@given(body=subscription_body | json_values, segment=segments)
def test_subscriptions_never_answer_5xx(client, fuzz_subscription, body, segment):
    send(client, "post", "/api/v1/subscriptions/", body)
    send(client, "patch", "/api/v1/subscriptions/fuzz-sub/", body)
    send(client, "get", f"/api/v1/subscriptions/{segment}/")
    send(client, "get", f"/api/v1/subscriptions/{segment}/usage/")


@FUZZ
@given(query=queries)
def test_list_filters_never_answer_5xx(client, fuzz_subscription, query):
    for path in ("/api/v1/customers/", "/api/v1/subscriptions/", "/api/v1/usage/"):
        send(client, "get", path, query=query)
    send(client, "get", "/api/v1/subscriptions/fuzz-sub/usage/", query=query)
    send(client, "get", "/api/v1/customers/acme/payment_methods/", query=query)
