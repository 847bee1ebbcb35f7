"""Invoices through the webhook intake: a Stripe `payment_intent.succeeded` settles an
attempt whose worker died before recording it, and Lago's `invoice.created` is mirrored
when Lago is the engine."""

import pytest
import requests

from billing.invoicing.models import CreditNote, Invoice
from billing.payments import collection
from billing.payments.models import PaymentAttempt
from tests.factories import SubscriptionFactory
from tests.helpers.invoicing import NOV_1, OCT_1, close_periods
from tests.helpers.outbox import drain_outbox
from tests.helpers.payments import finalized_invoice, payment_intents
from tests.helpers.providers import STRIPE_TEST_KEY
from tests.helpers.signing import stripe_event
from webhooks.models import WebhookEvent
from webhooks.services import webhook_event_process

pytestmark = pytest.mark.django_db


def process_latest() -> None:
    event = WebhookEvent.objects.order_by("-received_at").first()
    webhook_event_process(event_pk=event.pk)


def test_a_payment_webhook_settles_an_attempt_its_worker_never_recorded(
    stripe_enabled, post_stripe, monkeypatch
):
    invoice = finalized_invoice(card="pm_card_visa")
    settle = collection.payment_attempt_settle
    monkeypatch.setattr(
        collection, "payment_attempt_settle", lambda **kw: (_ for _ in ()).throw(SystemExit)
    )
    with pytest.raises(SystemExit):
        collection.invoice_collect(invoice_id=str(invoice.pk))
    monkeypatch.setattr(collection, "payment_attempt_settle", settle)
    stripe_customer = invoice.customer.stripe_customer_id
    (intent,) = payment_intents(stripe_enabled, stripe_customer)
    intent = requests.get(
        f"{stripe_enabled}/v1/payment_intents/{intent['id']}",
        headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}"},
        timeout=5,
    ).json()

    assert post_stripe(stripe_event("payment_intent.succeeded", intent)).status_code == 200
    process_latest()

    invoice.refresh_from_db()
    attempt = PaymentAttempt.objects.get()
    assert (attempt.status, attempt.stripe_payment_intent_id) == ("succeeded", intent["id"])
    assert invoice.payment_status == "succeeded"
    # Collection after the webhook neither charges nor changes anything.
    assert collection.invoice_collect(invoice_id=str(invoice.pk)) == "not due"
    assert len(payment_intents(stripe_enabled, stripe_customer)) == 1


def test_lago_invoice_webhook_is_mirrored_when_lago_is_the_engine(
    settings, lago, stripe_enabled, catalog, post_lago
):
    # (Lago and Stripe are configured before the catalog is created, so it reaches them.)
    settings.BILLING_ENGINE = "lago"
    drain_outbox()
    SubscriptionFactory(
        external_id="sub-hook", customer=catalog.acme, plan=catalog.pro, start_at=OCT_1
    )
    drain_outbox()
    close_periods()
    issued = lago.issue_invoice(
        external_subscription_id="sub-hook",
        charges_from=OCT_1,
        charges_to=NOV_1,
        fees_amount_cents=4900,
    )
    payload = {
        "webhook_type": "invoice.created",
        "object_type": "invoice",
        "organization_id": "00000000-0000-0000-0000-000000000001",
        "invoice": issued,
    }

    assert post_lago(payload).status_code == 200
    process_latest()
    assert post_lago(payload).status_code == 200  # a redelivery under another key
    process_latest()

    invoice = Invoice.objects.get(lago_id=issued["lago_id"])
    assert (invoice.status, invoice.total_amount_cents, invoice.reconciliation) == (
        "finalized",
        4900,
        "matched",
    )
    # No default card: collection waits, saying why.
    drain_outbox()
    invoice.refresh_from_db()
    assert invoice.payment_blocked_reason == "no_default_card"


def test_a_full_refund_in_stripe_marks_the_invoice_refunded(client, stripe_enabled, post_stripe):
    invoice = finalized_invoice(card="pm_card_visa")
    drain_outbox()
    invoice.refresh_from_db()
    assert invoice.payment_status == "succeeded"
    intent_id = invoice.attempts.get().stripe_payment_intent_id
    headers = {"Authorization": f"Bearer {STRIPE_TEST_KEY}"}
    intent = requests.get(
        f"{stripe_enabled}/v1/payment_intents/{intent_id}", headers=headers, timeout=5
    ).json()
    charge_id = intent["latest_charge"]
    if isinstance(charge_id, dict):
        charge_id = charge_id["id"]
    refund = requests.post(
        f"{stripe_enabled}/v1/refunds", data={"charge": charge_id}, headers=headers, timeout=5
    )
    assert refund.status_code == 200, refund.text
    charge = requests.get(f"{stripe_enabled}/v1/charges/{charge_id}", headers=headers, timeout=5)

    assert post_stripe(stripe_event("charge.refunded", charge.json())).status_code == 200
    process_latest()

    invoice.refresh_from_db()
    assert invoice.payment_status == "refunded"
    assert (invoice.refunded_amount_cents, invoice.credited_amount_cents) == (4900, 4900)
    # Made in Stripe, not by us: a credit note says so, for staff to review.
    (note,) = CreditNote.objects.filter(invoice=invoice)
    assert (note.reason, note.needs_review, note.refund_amount_cents) == ("other", True, 4900)
    assert note.refund_status == "succeeded"
    # The same news again records nothing more.
    assert post_stripe(stripe_event("charge.refunded", charge.json())).status_code == 200
    process_latest()
    assert CreditNote.objects.filter(invoice=invoice).count() == 1
    # Refunded: not payable again, and not voidable.
    assert client.post(f"/api/v1/invoices/{invoice.pk}/pay/").status_code == 409
    assert client.post(f"/api/v1/invoices/{invoice.pk}/void/").status_code == 409
