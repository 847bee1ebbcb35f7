"""Payment methods through Stripe (localstripe): add, list, switch default, remove."""

import logging

import pytest
import requests
from django.db import connection
from rest_framework.test import APIClient

from customers.models import PaymentMethod
from tests.factories import CustomerFactory
from tests.helpers.concurrency import race
from tests.helpers.outbox import run_outbox
from tests.helpers.providers import STRIPE_TEST_KEY

pytestmark = pytest.mark.django_db


def stripe_default(base: str, stripe_customer_id: str) -> str | None:
    customer = requests.get(
        f"{base}/v1/customers/{stripe_customer_id}",
        timeout=5,
        headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}"},
    ).json()
    return customer["invoice_settings"]["default_payment_method"]


def api_default(client, external_id: str) -> str | None:
    methods = client.get(f"/api/v1/customers/{external_id}/payment_methods/").json()["results"]
    defaults = [m["stripe_payment_method_id"] for m in methods if m["is_default"]]
    assert len(defaults) <= 1
    return defaults[0] if defaults else None


@pytest.fixture
def customer(stripe_enabled):
    customer = CustomerFactory(external_id="pm-cus")
    run_outbox()  # the worker creates the Stripe customer
    return customer


def add(client, pm: str, set_default: bool = False, external_id: str = "pm-cus"):
    return client.post(
        f"/api/v1/customers/{external_id}/payment_methods/",
        {"stripe_payment_method_id": pm, "set_default": set_default},
        format="json",
    )


def stripe_id_of(external_id: str) -> str:
    from customers.models import Customer

    return Customer.objects.get(external_id=external_id).stripe_customer_id


def test_the_whole_card_lifecycle_agrees_with_stripe(client, customer, stripe_enabled):
    base = stripe_enabled
    first = add(client, "pm_card_visa", set_default=True)
    assert first.status_code == 201, first.json()
    body = first.json()
    assert (body["brand"], body["last4"], body["exp_month"], body["exp_year"]) == (
        "visa",
        "4242",
        12,
        2030,
    )
    assert body["is_default"] is True
    stripe_customer = stripe_id_of("pm-cus")
    assert stripe_default(base, stripe_customer) == body["stripe_payment_method_id"]
    assert api_default(client, "pm-cus") == body["stripe_payment_method_id"]

    second = add(client, "pm_card_visa")
    assert second.status_code == 201 and second.json()["is_default"] is False
    assert stripe_default(base, stripe_customer) == api_default(client, "pm-cus")

    switched = client.post(
        f"/api/v1/customers/pm-cus/payment_methods/{second.json()['id']}/set_default/"
    )
    assert switched.status_code == 200 and switched.json()["is_default"] is True
    assert stripe_default(base, stripe_customer) == second.json()["stripe_payment_method_id"]
    assert api_default(client, "pm-cus") == second.json()["stripe_payment_method_id"]

    removed = client.delete(f"/api/v1/customers/pm-cus/payment_methods/{body['id']}/")
    assert removed.status_code == 204
    listed = client.get("/api/v1/customers/pm-cus/payment_methods/").json()["results"]
    assert [m["id"] for m in listed] == [second.json()["id"]]
    assert stripe_default(base, stripe_customer) == api_default(client, "pm-cus")
    remote = requests.get(
        f"{base}/v1/payment_methods/{body['stripe_payment_method_id']}",
        timeout=5,
        headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}"},
    ).json()
    assert remote["customer"] is None

    # Removing the default leaves no default, on both sides.
    client.delete(f"/api/v1/customers/pm-cus/payment_methods/{second.json()['id']}/")
    assert stripe_default(base, stripe_customer) is None
    assert api_default(client, "pm-cus") is None
    detached = client.get("/api/v1/customers/pm-cus/payment_methods/?status=detached").json()
    assert len(detached["results"]) == 2


def test_refused_cards_and_foreign_methods_change_nothing(client, customer, stripe_enabled):
    declined = add(client, "pm_card_visa_chargeDeclined")
    assert declined.status_code == 402
    assert declined.json()["errors"][0]["code"] == "card_declined"

    assert declined.json()["errors"][0]["detail"] == "Your card was declined."

    unknown = add(client, "pm_doesnotexist123")
    assert unknown.status_code == 422
    assert unknown.json()["errors"] == [
        {
            "code": "resource_missing",
            "detail": "Stripe has no payment method 'pm_doesnotexist123'.",
            "attr": "stripe_payment_method_id",
        }
    ]

    CustomerFactory(external_id="other")
    run_outbox()
    theirs = add(client, "pm_card_visa", external_id="other").json()
    foreign = add(client, theirs["stripe_payment_method_id"])
    assert foreign.status_code == 409
    assert foreign.json()["errors"][0]["code"] == "payment_method_belongs_to_other_customer"

    assert not PaymentMethod.objects.filter(customer__external_id="pm-cus").exists()
    assert client.get("/api/v1/customers/pm-cus/payment_methods/").json()["results"] == []


def test_stripe_outage_is_503_and_stores_nothing(client, customer, settings):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    response = add(client, "pm_card_visa")
    assert response.status_code == 503
    assert response.json()["errors"][0]["code"] == "provider_unavailable"
    assert not PaymentMethod.objects.exists()


def test_a_customer_not_yet_in_stripe_is_asked_to_retry(client, stripe_enabled):
    CustomerFactory(external_id="fresh")
    response = add(client, "pm_card_visa", external_id="fresh")
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "stripe_customer_pending"
    run_outbox()
    assert add(client, "pm_card_visa", external_id="fresh").status_code == 201


def test_setup_intent_gives_a_client_secret(client, customer):
    response = client.post("/api/v1/customers/pm-cus/setup_intents/")
    assert response.status_code == 201
    assert response.json()["client_secret"].startswith("seti_")


def test_invalid_input(client, customer):
    assert add(client, "card_4242").status_code == 400
    assert (
        client.post(
            "/api/v1/customers/pm-cus/payment_methods/00000000-0000-0000-0000-000000000000/set_default/"
        ).status_code
        == 404
    )


def test_no_card_data_in_logs_or_stored_rows(client, customer, caplog):
    caplog.set_level(logging.DEBUG)
    add(client, "pm_card_visa", set_default=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(p)::text FROM customers_paymentmethod p")
        rows = " ".join(r[0] for r in cursor.fetchall())
        cursor.execute(
            "SELECT coalesce(string_agg(stripe_data::text, ' '), '') FROM djstripe_paymentmethod"
        )
        rows += cursor.fetchone()[0]
    everything = rows + caplog.text
    assert "4242424242424242" not in everything
    assert '"cvc"' not in everything and "12/2030" not in everything


@pytest.mark.django_db(transaction=True)
def test_concurrent_set_default_calls_leave_both_sides_agreeing(api_key, stripe_enabled):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    CustomerFactory(external_id="race")
    run_outbox()
    ids = [add(client, "pm_card_visa", external_id="race").json()["id"] for _ in range(3)]

    def set_default(pm_id: str) -> int:
        local = APIClient()
        local.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
        return local.post(
            f"/api/v1/customers/race/payment_methods/{pm_id}/set_default/"
        ).status_code

    statuses = race([lambda pm=pm: set_default(pm) for pm in ids * 2])
    assert statuses == [200] * 6
    assert PaymentMethod.objects.filter(customer__external_id="race", is_default=True).count() == 1
    assert stripe_default(stripe_enabled, stripe_id_of("race")) == api_default(client, "race")


def test_admin_shows_cards_and_switches_the_default_through_stripe(
    admin_client, client, customer, stripe_enabled
):
    first = add(client, "pm_card_visa", set_default=True).json()
    second = add(client, "pm_card_visa").json()
    from customers.models import Customer

    page = admin_client.get(
        f"/admin/customers/customer/{Customer.objects.get(external_id='pm-cus').pk}/change/"
    )
    assert page.status_code == 200 and "visa ••••4242" in page.content.decode()
    response = admin_client.post(
        "/admin/customers/paymentmethod/",
        {"action": "set_default", "_selected_action": [second["id"]]},
        follow=True,
    )
    assert "now the default" in response.content.decode()
    assert (
        stripe_default(stripe_enabled, stripe_id_of("pm-cus")) == second["stripe_payment_method_id"]
    )
    admin_client.post(
        "/admin/customers/paymentmethod/",
        {"action": "remove", "_selected_action": [first["id"]]},
    )
    assert PaymentMethod.objects.get(pk=first["id"]).status == "detached"
    refused = admin_client.post(
        "/admin/customers/paymentmethod/",
        {"action": "set_default", "_selected_action": [first["id"]]},
        follow=True,
    )
    assert "not done" in refused.content.decode()


def test_a_late_attached_event_does_not_revive_a_removed_card(client, customer, settings):
    from tests.helpers.signing import STRIPE_SECRET, dumps, stripe_event, stripe_signature
    from webhooks.models import WebhookEvent
    from webhooks.services import webhook_event_process

    settings.STRIPE_WEBHOOK_SECRET = [STRIPE_SECRET]
    card = add(client, "pm_card_visa", set_default=True).json()
    attached = {
        "id": card["stripe_payment_method_id"],
        "object": "payment_method",
        "customer": stripe_id_of("pm-cus"),
        "type": "card",
        "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030},
    }
    assert (
        client.delete(f"/api/v1/customers/pm-cus/payment_methods/{card['id']}/").status_code == 204
    )
    body = dumps(stripe_event("payment_method.attached", attached))
    from rest_framework.test import APIClient

    APIClient().post(
        "/webhooks/stripe/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe_signature(body),
    )
    webhook_event_process(event_pk=WebhookEvent.objects.get().pk)
    method = PaymentMethod.objects.get(pk=card["id"])
    assert (method.status, method.is_default) == ("detached", False)


@pytest.fixture
def hung_server():
    """A server that accepts connections and never answers."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        yield f"http://127.0.0.1:{silent.getsockname()[1]}"
    finally:
        silent.close()


def test_a_hung_stripe_answers_503_within_seconds(client, customer, settings, hung_server):
    import time

    settings.STRIPE_API_BASE = hung_server
    settings.STRIPE_TIMEOUT_SECONDS = 30.0  # the task timeout must not apply in a request
    settings.STRIPE_REQUEST_TIMEOUT_SECONDS = 2.0
    started = time.monotonic()
    response = add(client, "pm_card_visa")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["errors"][0]["code"] == "provider_unavailable"
    assert elapsed < 10, elapsed  # one attempt of 2 s, no retries (was 31.5 s)
    assert not PaymentMethod.objects.exists()


def test_outside_a_request_stripe_calls_keep_their_timeout_and_retries(settings):
    from billing.providers import stripe as provider
    from billing.providers.inline import inline_calls

    settings.STRIPE_SECRET_KEY = STRIPE_TEST_KEY
    settings.STRIPE_TIMEOUT_SECONDS = 9.0
    settings.STRIPE_REQUEST_TIMEOUT_SECONDS = 2.0
    provider._configure()
    import stripe

    http = stripe.default_http_client
    assert http._timeout == 9.0
    with inline_calls():
        assert http._timeout == 2.0
    assert stripe.max_network_retries == 2
