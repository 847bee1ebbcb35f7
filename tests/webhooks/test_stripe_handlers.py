"""Stripe handlers against localstripe: the mirror follows Stripe, never backwards."""

import random

import pytest
import requests
from djstripe import models as djstripe_models

from billing.sync import outbox
from billing.sync.models import OutboxMessage
from customers.models import PaymentMethod
from tests.factories import CustomerFactory
from tests.helpers.outbox import drain_outbox
from tests.helpers.providers import STRIPE_TEST_KEY
from tests.helpers.signing import stripe_event
from webhooks.models import ObjectVersion, WebhookEvent
from webhooks.services import webhook_event_process, webhook_event_replay

pytestmark = pytest.mark.django_db


def stripe_post(base: str, path: str, **data) -> dict:
    response = requests.post(
        f"{base}/v1/{path}",
        data=data,
        timeout=5,
        headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def stripe_world(stripe_enabled):
    """A synced customer with a card and a paid PaymentIntent, as localstripe holds them."""
    customer = CustomerFactory(external_id="acme", name="Acme", email="a@acme.test")
    message = OutboxMessage.objects.get(object_id=str(customer.pk), provider="stripe")
    assert outbox.outbox_process(message_id=message.pk) == "done"
    customer.refresh_from_db()
    base = stripe_enabled
    pm = stripe_post(
        base, "payment_methods/pm_card_visa/attach", customer=customer.stripe_customer_id
    )
    intent = stripe_post(
        base,
        "payment_intents",
        amount=1999,
        currency="usd",
        customer=customer.stripe_customer_id,
        payment_method=pm["id"],
        confirm="true",
        off_session="true",
    )
    assert intent["status"] == "succeeded"
    remote_customer = requests.get(
        f"{base}/v1/customers/{customer.stripe_customer_id}",
        timeout=5,
        headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}"},
    ).json()
    return {"customer": customer, "stripe_customer": remote_customer, "pm": pm, "intent": intent}


def revised(stripe_customer: dict, rev: str) -> dict:
    """The customer with a revision marker in its metadata: what the mirror keeps of it
    (its name, personal data, is never mirrored)."""
    return {**stripe_customer, "metadata": {**stripe_customer["metadata"], "rev": rev}}


def lifecycle(world) -> list[dict]:
    """A realistic sequence, one second apart: revisions, a card's life, a failed then paid
    PI."""
    t = 1_800_000_000
    v1 = revised(world["stripe_customer"], "v1")
    v2 = revised(world["stripe_customer"], "v2")
    pm = world["pm"]
    expiry_updated = {**pm, "card": {**pm["card"], "exp_year": pm["card"]["exp_year"] + 3}}
    detached = {**expiry_updated, "customer": None}
    failed = {**world["intent"], "status": "requires_payment_method"}
    return [
        stripe_event("customer.updated", v1, created=t),
        stripe_event("customer.updated", v2, created=t + 1),
        stripe_event("payment_method.attached", pm, created=t + 2),
        stripe_event("payment_method.updated", expiry_updated, created=t + 3),
        stripe_event("payment_method.detached", detached, created=t + 4),
        stripe_event("payment_intent.payment_failed", failed, created=t + 5),
        stripe_event("payment_intent.succeeded", world["intent"], created=t + 6),
    ]


def end_state(world) -> dict:
    customer = djstripe_models.Customer.objects.get(id=world["stripe_customer"]["id"])
    pm = djstripe_models.PaymentMethod.objects.get(id=world["pm"]["id"])
    intent = djstripe_models.PaymentIntent.objects.get(id=world["intent"]["id"])
    local = PaymentMethod.objects.filter(stripe_payment_method_id=world["pm"]["id"]).first()
    return {
        "customer_rev": customer.stripe_data["metadata"].get("rev"),
        "pm_customer": pm.customer_id,
        "pm_exp_year": pm.stripe_data["card"]["exp_year"],
        "intent_status": intent.stripe_data["status"],
        "local_pm_status": local.status if local else None,
    }


def deliver(post_stripe, events: list[dict]) -> None:
    for event in events:
        assert post_stripe(event).status_code == 200
        stored = WebhookEvent.objects.get(event_id=event["id"])
        webhook_event_process(event_pk=stored.pk)
    drain_outbox()  # dj-stripe's mirror is written by the outbox, after the handlers


def forget_mirror() -> None:
    WebhookEvent.objects.all().delete()
    ObjectVersion.objects.all().delete()
    djstripe_models.PaymentIntent.objects.all().delete()
    djstripe_models.PaymentMethod.objects.all().delete()
    PaymentMethod.objects.all().delete()


def test_shuffled_and_duplicated_delivery_ends_like_in_order(
    stripe_world, stripe_enabled, post_stripe
):
    events = lifecycle(stripe_world)
    # The card's life has ended in Stripe by the time its events arrive.
    stripe_post(stripe_enabled, f"payment_methods/{stripe_world['pm']['id']}/detach")
    deliver(post_stripe, events)
    in_order = end_state(stripe_world)
    assert in_order == {
        "customer_rev": "v2",
        "pm_customer": None,  # payment methods follow Stripe's current state...
        "pm_exp_year": stripe_world["pm"]["card"]["exp_year"],  # ...not an event's payload
        "intent_status": "succeeded",
        "local_pm_status": None,  # gone before we heard of it: nothing to show
    }
    for seed in range(5):
        forget_mirror()
        rng = random.Random(seed)
        shuffled = events + rng.sample(events, 4)  # every event, some of them twice
        rng.shuffle(shuffled)
        deliver(post_stripe, shuffled)
        assert end_state(stripe_world) == in_order, f"seed {seed}"
        assert WebhookEvent.objects.count() == len(events)


def test_an_older_event_is_recorded_but_not_applied(stripe_world, post_stripe):
    newer, older = lifecycle(stripe_world)[1], lifecycle(stripe_world)[0]
    deliver(post_stripe, [newer, older])
    stale = WebhookEvent.objects.get(event_id=older["id"])
    assert stale.status == "processed" and "older" in stale.note
    assert end_state_rev(stripe_world) == "v2"


def end_state_rev(world) -> str | None:
    mirror = djstripe_models.Customer.objects.get(id=world["stripe_customer"]["id"])
    return mirror.stripe_data["metadata"].get("rev")


def test_events_of_the_same_second_are_settled_by_asking_stripe(stripe_world, post_stripe):
    t = 1_900_000_000
    a = stripe_event("customer.updated", revised(stripe_world["stripe_customer"], "A"), created=t)
    b = stripe_event("customer.updated", revised(stripe_world["stripe_customer"], "B"), created=t)
    deliver(post_stripe, [a, b])
    # Neither payload can be trusted over the other: the mirror holds Stripe's current name.
    assert end_state_rev(stripe_world) is None  # Stripe's customer has no "rev"


def test_event_links_to_our_customer(stripe_world, post_stripe):
    event = lifecycle(stripe_world)[2]
    deliver(post_stripe, [event])
    stored = WebhookEvent.objects.get(event_id=event["id"])
    assert stored.customer_id == stripe_world["customer"].pk
    local = PaymentMethod.objects.get(stripe_payment_method_id=stripe_world["pm"]["id"])
    assert stored.related == [
        {"type": "stripe.payment_method", "id": stripe_world["pm"]["id"]},
        {"type": "payment_method", "id": str(local.pk)},
    ]
    assert local.customer_id == stripe_world["customer"].pk and local.status == "active"


def test_customer_deleted_in_stripe_clears_the_link(stripe_world, post_stripe):
    deleted = {"id": stripe_world["stripe_customer"]["id"], "object": "customer", "deleted": True}
    deliver(post_stripe, [stripe_event("payment_method.attached", stripe_world["pm"])])
    assert PaymentMethod.objects.get(stripe_payment_method_id=stripe_world["pm"]["id"]).status == (
        "active"
    )
    deliver(post_stripe, [stripe_event("customer.deleted", deleted)])
    stripe_world["customer"].refresh_from_db()
    assert stripe_world["customer"].stripe_customer_id is None
    # Its cards went with it.
    assert PaymentMethod.objects.get(stripe_payment_method_id=stripe_world["pm"]["id"]).status == (
        "detached"
    )


def test_handler_failures_retry_then_fail_and_can_be_replayed(
    stripe_world, stripe_enabled, post_stripe, settings
):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    t = 1_900_000_000
    first = stripe_event(
        "customer.updated", revised(stripe_world["stripe_customer"], "A"), created=t
    )
    event = stripe_event(
        "customer.updated", revised(stripe_world["stripe_customer"], "B"), created=t
    )
    deliver(post_stripe, [first])
    post_stripe(event)
    stored = WebhookEvent.objects.get(event_id=event["id"])
    # A tie must be settled by asking Stripe, which is unreachable.
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    assert webhook_event_process(event_pk=stored.pk) == "retrying"
    WebhookEvent.objects.filter(pk=stored.pk).update(available_at=stored.received_at)
    assert webhook_event_process(event_pk=stored.pk) == "failed"
    stored.refresh_from_db()
    assert stored.status == "failed" and stored.attempts == 2 and stored.last_error

    settings.STRIPE_API_BASE = stripe_enabled  # Stripe is back: staff replay it
    assert webhook_event_replay(event=stored) == "processed"
    drain_outbox()
    assert end_state_rev(stripe_world) is None  # Stripe's customer has no "rev"
