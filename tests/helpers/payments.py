"""Collection set-ups against localstripe: a payer with a card and an invoice to pay."""

import requests

from billing.invoicing.models import Invoice
from tests.helpers.invoicing import OCT_1, close_periods, generate, subscribe
from tests.helpers.outbox import drain_outbox
from tests.helpers.providers import STRIPE_TEST_KEY


def payment_intents(base: str, stripe_customer_id: str) -> list[dict]:
    response = requests.get(
        f"{base}/v1/payment_intents",
        params={"customer": stripe_customer_id, "limit": 100},
        headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}"},
        timeout=5,
    )
    response.raise_for_status()
    return response.json()["data"]


def declining_card(base: str) -> str:
    response = requests.post(
        f"{base}/v1/payment_methods",
        data={
            "type": "card",
            "card[number]": "4000000000000341",
            "card[exp_month]": "12",
            "card[exp_year]": "2030",
            "card[cvc]": "123",
        },
        headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}"},
        timeout=5,
    )
    response.raise_for_status()
    return response.json()["id"]


def finalized_invoice(client, *, card: str | None) -> Invoice:
    """A customer in Stripe (with `card` as default), a closed month and its invoice
    finalized: collection is queued."""
    assert (
        client.post(
            "/api/v1/customers/", {"external_id": "payer", "currency": "USD"}, format="json"
        ).status_code
        == 201
    )
    drain_outbox()  # the worker creates the Stripe customer
    if card:
        response = client.post(
            "/api/v1/customers/payer/payment_methods/",
            {"stripe_payment_method_id": card, "set_default": True},
            format="json",
        )
        assert response.status_code == 201, response.json()
    subscribe(client, "sub-pay", "pro", OCT_1, customer="payer")
    close_periods()
    invoice_id = generate(client, "sub-pay")[1]["id"]
    response = client.post(f"/api/v1/invoices/{invoice_id}/finalize/")
    assert response.status_code == 200, response.json()
    return Invoice.objects.get(pk=invoice_id)
