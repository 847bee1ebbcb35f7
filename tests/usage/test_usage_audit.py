"""Recording usage and taking in webhooks run without an audit context
(AUDIT_UNTRACKED_PATHS): that holds only while they change no audited table, which is what
these tests check."""

import pghistory.models
import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import SubscriptionFactory
from tests.helpers.signing import STRIPE_SECRET, dumps, stripe_event, stripe_signature

pytestmark = pytest.mark.django_db


def audit_rows() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_models()
        if issubclass(model, pghistory.models.Event)
    }


@pytest.mark.parametrize("engine", ["local", "lago"])
def test_recording_usage_writes_no_audit_row_and_sets_no_context(client, catalog, settings, engine):
    settings.BILLING_ENGINE = engine
    SubscriptionFactory(external_id="sub-1", customer=catalog.acme, plan=catalog.pro)
    before = audit_rows()
    event = {"subscription": "sub-1", "metric": "tokens", "properties": {"tokens": 3}}

    with CaptureQueriesContext(connection) as queries:
        single = client.post("/api/v1/usage/", {**event, "transaction_id": "a"}, format="json")
        batch = client.post(
            "/api/v1/usage/batch/",
            {"events": [{**event, "transaction_id": "b"}, {**event, "transaction_id": "a"}]},
            format="json",
        )

    assert single.status_code == 201 and batch.status_code == 200, batch.content
    assert [r["status"] for r in batch.json()["results"]] == ["created", "duplicate"]
    assert audit_rows() == before
    assert not [q for q in queries.captured_queries if "pghistory.context" in q["sql"]]


def test_webhook_intake_writes_no_audit_row_and_sets_no_context(anonymous_client, settings):
    settings.STRIPE_WEBHOOK_SECRET = [STRIPE_SECRET]
    body = dumps(stripe_event("customer.updated", {"id": "cus_1", "object": "customer"}))
    before = audit_rows()

    with CaptureQueriesContext(connection) as queries:
        response = anonymous_client.post(
            "/webhooks/stripe/",
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=stripe_signature(body),
        )

    assert response.status_code == 200, response.content
    assert audit_rows() == before
    assert not [q for q in queries.captured_queries if "pghistory.context" in q["sql"]]


def test_other_writes_keep_their_audit_context(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            "/api/v1/customers/", {"external_id": "c-1", "name": "C"}, format="json"
        )

    assert response.status_code == 201
    assert [q for q in queries.captured_queries if "pghistory.context" in q["sql"]]
