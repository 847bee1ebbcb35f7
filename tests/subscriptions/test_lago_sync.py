"""With Lago as the engine, every request we send passes Lago's spec and Lago's view of
each subscription matches ours after every step."""

from datetime import timedelta

import pytest

from subscriptions.models import BillableMetric, Plan, Subscription
from tests.factories import SubscriptionFactory
from tests.helpers.outbox import drain_outbox, run_outbox
from tests.helpers.signing import LAGO_HMAC_KEY, dumps, lago_hmac

pytestmark = pytest.mark.django_db
URL = "/api/v1/subscriptions/"


@pytest.fixture
def engine(lago, settings):
    settings.BILLING_ENGINE = "lago"
    return lago


def lago_view(lago, external_id: str) -> dict:
    """Lago's subscription for this external_id: the active one, else the last one that
    ran (a canceled pending record is a dropped downgrade, not the subscription)."""
    mine = [s for s in lago._subscriptions if s["external_id"] == external_id]
    for status in ("active", "pending", "terminated"):
        found = [s for s in mine if s["status"] == status]
        if found:
            return max(found, key=lambda s: s.get("terminated_at") or s["created_at"])
    return mine[-1]


def assert_same(lago, external_id: str) -> None:
    ours = Subscription.objects.select_related("plan", "next_plan").get(external_id=external_id)
    theirs = lago_view(lago, external_id)
    expected_status = {
        "active": "active",
        "terminated": "terminated",
        "canceled": "terminated",
        "pending": "pending",
    }[ours.status]
    assert theirs["status"] == expected_status, (ours.status, theirs)
    if ours.status == "active":
        assert theirs["plan_code"] == ours.plan.code
        assert theirs.get("next_plan_code") == (ours.next_plan.code if ours.next_plan else None)
        expected_end = (
            (ours.current_period_end - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            if ours.cancel_at_period_end
            else None
        )
        assert theirs.get("ending_at") == expected_end
        assert str(ours.lago_id) == theirs["lago_id"]


def test_catalog_reaches_lago_with_lago_ids(client, engine, catalog):
    drain_outbox()
    assert engine.billable_metrics["tokens"]["aggregation_type"] == "sum_agg"
    assert engine.billable_metrics["tokens"]["field_name"] == "tokens"
    tokens = BillableMetric.objects.get(code="tokens")
    assert str(tokens.lago_id) == engine.billable_metrics["tokens"]["lago_id"]
    pro = engine.plans["pro"]
    assert pro["amount_cents"] == 4900 and pro["amount_currency"] == "USD"
    assert {c["lago_billable_metric_id"] for c in pro["charges"]} == {
        str(m.lago_id) for m in BillableMetric.objects.all()
    }
    assert Plan.objects.get(code="pro").lago_id is not None


def test_every_lifecycle_step_is_mirrored_in_lago(client, engine, catalog):
    def step(method: str, path: str, body: dict | None = None):
        response = getattr(client, method)(path, body or {}, format="json")
        assert response.status_code in (200, 201), response.json()
        drain_outbox()
        assert_same(engine, "sub-1")

    step("post", URL, {"external_id": "sub-1", "customer": "acme", "plan": "pro"})
    step("patch", f"{URL}sub-1/", {"plan": "business"})  # upgrade: now
    step("patch", f"{URL}sub-1/", {"plan": "starter"})  # downgrade: at period end
    step("post", f"{URL}sub-1/cancel/", {"at_period_end": True})
    step("post", f"{URL}sub-1/reactivate/")
    step("post", f"{URL}sub-1/cancel/", {"at_period_end": False})
    step("post", f"{URL}sub-1/reactivate/")
    deletes = [r["query"] for r in engine.requests if r["method"] == "DELETE"]
    # Dropping the scheduled downgrade ended Lago's pending record, invoicing nothing;
    # terminating now invoiced the usage so far.
    assert [q.get("status") for q in deletes] == [["pending"], None]
    assert [q["on_termination_invoice"] for q in deletes] == [["skip"], ["generate"]]


def test_a_catalog_not_yet_in_lago_delays_the_subscription(engine, catalog):
    from billing.sync.models import OutboxMessage

    SubscriptionFactory(external_id="sub-1", customer=catalog.acme, plan=catalog.pro)
    subscription_message = OutboxMessage.objects.get(action="subscription.sync")
    from billing.sync.outbox import outbox_process

    assert outbox_process(message_id=subscription_message.pk) == "retrying"
    subscription_message.refresh_from_db()
    assert "waiting for plan pro" in subscription_message.last_error
    run_outbox()
    drain_outbox()
    assert_same(engine, "sub-1")


def deliver_lago(client, webhook_type: str, subscription: dict) -> str:
    import uuid

    from webhooks.models import WebhookEvent
    from webhooks.services import webhook_event_process

    key = str(uuid.uuid4())
    body = dumps(
        {
            "webhook_type": webhook_type,
            "object_type": "subscription",
            "organization_id": str(uuid.uuid4()),
            "subscription": subscription,
        }
    )
    response = client.post(
        "/webhooks/lago/",
        data=body,
        content_type="application/json",
        HTTP_X_LAGO_SIGNATURE=lago_hmac(body),
        HTTP_X_LAGO_SIGNATURE_ALGORITHM="hmac",
        HTTP_X_LAGO_UNIQUE_KEY=key,
    )
    assert response.status_code == 200
    event = WebhookEvent.objects.get(event_id=key)
    assert webhook_event_process(event_pk=event.pk) == "processed"
    event.refresh_from_db()
    return event.note


@pytest.fixture
def lago_webhooks(settings):
    settings.LAGO_WEBHOOK_HMAC_KEY = LAGO_HMAC_KEY


def test_lago_ending_a_subscription_on_its_own_is_followed(client, engine, catalog, lago_webhooks):
    SubscriptionFactory(external_id="sub-1", customer=catalog.acme, plan=catalog.pro)
    drain_outbox()
    record = lago_view(engine, "sub-1")
    record.update(status="terminated", terminated_at="2030-01-01T00:00:00Z")  # ended in Lago
    note = deliver_lago(client, "subscription.terminated", dict(record))
    assert note == "ended here too, following Lago"
    assert Subscription.objects.get().status == "terminated"


def test_lago_ending_the_old_record_of_a_plan_change_is_not_an_ending(
    client, engine, catalog, lago_webhooks
):
    SubscriptionFactory(external_id="sub-1", customer=catalog.acme, plan=catalog.pro)
    drain_outbox()
    old = dict(lago_view(engine, "sub-1"))
    client.patch(f"{URL}sub-1/", {"plan": "business"}, format="json")
    drain_outbox()  # Lago ended the pro record and started a business one
    ended = next(s for s in engine._subscriptions if s["lago_id"] == old["lago_id"])
    # Delivered late, as if the upgrade's own sync had not stored the new id yet.
    Subscription.objects.update(lago_id=old["lago_id"])
    note = deliver_lago(client, "subscription.terminated", dict(ended))
    assert note == "Lago still holds a live record: not an ending"
    assert Subscription.objects.get().status == "active"


def test_new_charge_models_and_decimal_bounds_reach_lago(client, engine, catalog):
    """graduated_percentage, dynamic and decimal range bounds go to Lago as its charge
    models take them (ChargeModelEnum, ChargeProperties; bounds as JSON numbers, which
    lago-api compares as BigDecimal): the fake checks each request against the spec."""
    percentage_ranges = [
        {"from_value": 0, "to_value": 10, "rate": "1", "flat_amount": "2"},
        {"from_value": 11, "to_value": None, "rate": "0.5", "flat_amount": "0"},
    ]
    graduated_ranges = [
        {"from_value": 0, "to_value": 0.1, "per_unit_amount": "10", "flat_amount": "0"},
        {"from_value": 0.1, "to_value": None, "per_unit_amount": "5", "flat_amount": "0"},
    ]
    body = {
        "code": "new-models",
        "name": "New models",
        "interval": "monthly",
        "amount_cents": 0,
        "currency": "USD",
        "charges": [
            {
                "metric": "api_calls",
                "model": "graduated_percentage",
                "properties": {"graduated_percentage_ranges": percentage_ranges},
            },
            {"metric": "tokens", "model": "dynamic", "properties": {}},
        ],
    }
    response = client.post("/api/v1/plans/", body, format="json")
    assert response.status_code == 201, response.json()
    decimal = {**body, "code": "decimal-bounds"}
    decimal["charges"] = [
        {
            "metric": "tokens",
            "model": "graduated",
            "properties": {"graduated_ranges": graduated_ranges},
        }
    ]
    response = client.post("/api/v1/plans/", decimal, format="json")
    assert response.status_code == 201, response.json()
    drain_outbox()
    assert engine.violations == []
    sent = {c["charge_model"]: c["properties"] for c in engine.plans["new-models"]["charges"]}
    assert sent == {
        "graduated_percentage": {"graduated_percentage_ranges": percentage_ranges},
        "dynamic": {},
    }
    (graduated,) = engine.plans["decimal-bounds"]["charges"]
    assert graduated["properties"]["graduated_ranges"][0]["to_value"] == 0.1
