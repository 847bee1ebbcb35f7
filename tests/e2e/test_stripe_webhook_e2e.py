"""A change made in Stripe (localstripe) reaches our database through a real webhook."""

import pytest
import requests
from djstripe import models as djstripe_models

from customers.models import Customer, PaymentMethod
from tests.helpers.providers import STRIPE_TEST_KEY, wait_until
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.e2e
SECRET = "whsec_e2e_" + "w" * 24


@pytest.fixture
def stripe_webhooks_to_us(stripe_enabled, live_server, settings):
    settings.STRIPE_WEBHOOK_SECRET = [SECRET]
    register = f"{stripe_enabled}/_config/webhooks/e2e"
    response = requests.post(
        register, data={"url": f"{live_server.url}/webhooks/stripe/", "secret": SECRET}, timeout=5
    )
    assert response.status_code == 200
    yield
    # localstripe cannot forget a webhook: point it where nothing listens.
    requests.post(register, data={"url": "http://127.0.0.1:9/", "secret": SECRET}, timeout=5)


def test_payment_method_attached_in_stripe_reaches_our_database(
    client, stripe_enabled, worker, stripe_webhooks_to_us
):
    assert (
        client.post("/api/v1/customers/", {"external_id": "wh-1"}, format="json").status_code == 201
    )
    customer = wait_until(
        lambda: Customer.objects.filter(
            external_id="wh-1", stripe_customer_id__isnull=False
        ).first()
    )
    attached = requests.post(
        f"{stripe_enabled}/v1/payment_methods/pm_card_visa/attach",
        data={"customer": customer.stripe_customer_id},
        headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}"},
        timeout=5,
    ).json()

    mirrored = wait_until(
        lambda: djstripe_models.PaymentMethod.objects.filter(id=attached["id"]).first(),
        timeout=20,
    )
    assert mirrored.customer_id == customer.stripe_customer_id
    event = WebhookEvent.objects.get(type="payment_method.attached", object_id=attached["id"])
    assert event.status == "processed" and event.customer_id == customer.pk
    ours = wait_until(
        lambda: PaymentMethod.objects.filter(stripe_payment_method_id=attached["id"]).first()
    )
    assert (ours.customer_id, ours.status, ours.last4) == (customer.pk, "active", "4242")

    # Removed from the Stripe dashboard: our list follows, again by webhook alone.
    requests.post(
        f"{stripe_enabled}/v1/payment_methods/{attached['id']}/detach",
        headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}"},
        timeout=5,
    )
    wait_until(
        lambda: PaymentMethod.objects.filter(pk=ours.pk, status="detached").exists(), timeout=20
    )
