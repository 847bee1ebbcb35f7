"""Collection set-ups against localstripe: a payer with a card and an invoice to pay."""

import requests

from billing.invoicing.models import Invoice
from billing.invoicing.services import invoice_finalize
from customers.services import payment_method_add
from tests.factories import CustomerFactory, InvoiceFactory, PlanFactory, SubscriptionFactory
from tests.helpers.invoicing import OCT_1
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


def finalized_invoice(*, card: str | None) -> Invoice:
    """A customer "payer" in Stripe (with `card` as its default), October on Pro (49.00)
    and its invoice finalized by the service, so its collection is queued as after the
    API's finalize. Needs Stripe enabled (the `stripe_enabled` fixture)."""
    payer = CustomerFactory(external_id="payer", currency="USD")
    drain_outbox()  # the worker creates the Stripe customer
    payer.refresh_from_db()
    if card:
        payment_method_add(customer=payer, stripe_payment_method_id=card, set_default=True)
    pro = PlanFactory(code="pro", name="Pro", amount_cents=4900, currency="USD")
    subscription = SubscriptionFactory(
        external_id="sub-pay", customer=payer, plan=pro, start_at=OCT_1
    )
    draft = InvoiceFactory(subscription=subscription)
    return Invoice.objects.get(pk=invoice_finalize(invoice=draft).pk)


def stripe_refunds(base: str, invoice: Invoice) -> list[dict]:
    """The refunds Stripe holds of the invoice's one payment."""
    intent = invoice.attempts.get().stripe_payment_intent_id
    response = requests.get(
        f"{base}/v1/refunds",
        params={"payment_intent": intent},
        headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}"},
        timeout=5,
    )
    response.raise_for_status()
    return response.json()["data"]
