"""Collection charges one customer at most COLLECTION_MAX_CHARGES_PER_CUSTOMER_PER_DAY
times automatically in 24 h; the rest wait, blocked, for staff (hardening: money
safeguards, item 1)."""

from datetime import timedelta

import pytest

from billing.invoicing.models import Invoice
from billing.invoicing.services import invoice_finalize
from billing.payments.models import PaymentAttempt
from config.settings import base
from tests.factories import InvoiceFactory
from tests.helpers.invoicing import NOV_1, OCT_1
from tests.helpers.outbox import drain_outbox
from tests.helpers.payments import finalized_invoice, payment_intents

pytestmark = pytest.mark.django_db


def backlog(count: int) -> list[Invoice]:
    """`count` finalized invoices of one customer with a card, collection queued."""
    first = finalized_invoice(card="pm_card_visa")
    invoices = [first]
    for month in range(1, count):
        start = OCT_1 - timedelta(days=31 * month)
        draft = InvoiceFactory(
            subscription=first.subscription, period_start=start, period_end=start + (NOV_1 - OCT_1)
        )
        invoices.append(invoice_finalize(invoice=draft))
    return invoices


def test_charges_past_the_daily_limit_wait_for_staff(
    client, admin_client, stripe_enabled, settings
):
    settings.COLLECTION_MAX_CHARGES_PER_CUSTOMER_PER_DAY = 2
    invoices = backlog(4)

    drain_outbox()

    customer = invoices[0].customer
    assert len(payment_intents(stripe_enabled, customer.stripe_customer_id)) == 2
    rows = Invoice.objects.filter(pk__in=[i.pk for i in invoices])
    assert sorted(rows.values_list("payment_status", "payment_blocked_reason")) == [
        ("pending", "daily_charge_limit"),
        ("pending", "daily_charge_limit"),
        ("succeeded", ""),
        ("succeeded", ""),
    ]
    blocked = list(rows.filter(payment_blocked_reason="daily_charge_limit"))
    assert all(invoice.next_payment_attempt_at is None for invoice in blocked)
    assert PaymentAttempt.objects.count() == 2
    listing = admin_client.get("/admin/invoicing/invoice/?collection=blocked")
    assert listing.status_code == 200
    assert {i.pk for i in listing.context["cl"].queryset} == {i.pk for i in blocked}

    # Another run charges nothing more; staff's retry (pay) is explicit and goes through.
    drain_outbox()
    assert len(payment_intents(stripe_enabled, customer.stripe_customer_id)) == 2
    response = client.post(f"/api/v1/invoices/{blocked[0].pk}/pay/")
    assert response.status_code == 200, response.json()
    drain_outbox()
    blocked[0].refresh_from_db()
    assert blocked[0].payment_status == "succeeded"
    assert blocked[0].collection_approved is False
    assert len(payment_intents(stripe_enabled, customer.stripe_customer_id)) == 3
    assert PaymentAttempt.objects.filter(automatic=False).count() == 1
    blocked[1].refresh_from_db()
    assert blocked[1].payment_blocked_reason == "daily_charge_limit"


def test_the_default_limit_is_three():
    assert base.COLLECTION_MAX_CHARGES_PER_CUSTOMER_PER_DAY == 3
