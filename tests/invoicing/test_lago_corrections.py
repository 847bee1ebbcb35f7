"""BILLING_ENGINE=lago: coupons, wallets, add-ons, one-off invoices and credit notes reach
Lago (every request checked against Lago's spec by the fake), Lago's invoices come back
with what Lago took off them, and our ledgers follow Lago's."""

from decimal import Decimal

import pytest

from billing.coupons.models import AppliedCoupon, Coupon
from billing.coupons.sync import applied_coupon_sync_lago
from billing.invoicing.lago_mirror import lago_invoices_pull
from billing.invoicing.models import AddOn, CreditNote, Invoice
from billing.providers import lago
from billing.providers.base import OneOffFeeData
from billing.wallets.models import Wallet, WalletTransaction
from billing.wallets.sync import wallet_sync_lago, wallet_transaction_sync_lago
from tests.helpers.invoicing import NOV_1, OCT_1
from tests.helpers.outbox import drain_outbox
from tests.helpers.payments import stripe_refunds

pytestmark = pytest.mark.django_db
PRO = [{"type": "subscription", "code": "pro", "amount_cents": 4900}]


def post(client, path: str, body: dict) -> dict:
    response = client.post(path, body, format="json")
    assert response.status_code in (200, 201), response.json()
    return response.json()


def credits_for_acme(client) -> Wallet:
    """A 5.00 fixed coupon for three periods and a wallet of 10.00 of granted credits."""
    post(
        client,
        "/api/v1/coupons/",
        {
            "code": "welcome",
            "name": "Welcome",
            "coupon_type": "fixed_amount",
            "amount_cents": 500,
            "amount_currency": "USD",
            "frequency": "recurring",
            "frequency_duration": 3,
        },
    )
    post(client, "/api/v1/applied_coupons/", {"customer": "acme", "coupon_code": "welcome"})
    post(
        client,
        "/api/v1/wallets/",
        {"customer": "acme", "currency": "USD", "granted_credits": "10"},
    )
    drain_outbox()
    return Wallet.objects.get()


def test_coupons_and_wallets_reach_lago_once(lago_engine, client):
    wallet = credits_for_acme(client)

    coupon = lago_engine.coupons["welcome"]
    assert (coupon["coupon_type"], coupon["amount_cents"], coupon["frequency_duration"]) == (
        "fixed_amount",
        500,
        3,
    )
    assert str(Coupon.objects.get().lago_id) == coupon["lago_id"]
    [applied] = lago_engine.applied_coupons
    assert (applied["external_customer_id"], applied["coupon_code"]) == ("acme", "welcome")
    assert str(AppliedCoupon.objects.get().lago_id) == applied["lago_id"]
    remote = lago_engine.wallets[str(wallet.lago_id)]
    assert (remote["code"], remote["currency"], remote["balance_cents"]) == (
        str(wallet.pk),
        "USD",
        1000,
    )
    grant = WalletTransaction.objects.get()
    [made] = lago_engine.wallet_transactions
    assert (made["name"], made["transaction_status"], made["credit_amount"]) == (
        f"grant {grant.pk}",
        "granted",
        "10",
    )

    # The handlers run again (a redelivery, a retry after a lost answer): nothing twice.
    AppliedCoupon.objects.update(lago_id=None)  # as if the answer had been lost
    applied_coupon_sync_lago(str(AppliedCoupon.objects.get().pk))
    Wallet.objects.update(lago_id=None)
    wallet_sync_lago(str(wallet.pk))
    wallet_transaction_sync_lago(str(grant.pk))
    assert len(lago_engine.applied_coupons) == 1
    assert len(lago_engine.wallets) == 1
    assert len(lago_engine.wallet_transactions) == 1
    assert str(AppliedCoupon.objects.get().lago_id) == applied["lago_id"]


def test_lago_takes_coupon_and_credits_off_and_we_charge_the_rest(lago_engine, client):
    """Lago's invoice for October: fees 49.00, coupon 5.00, subtotal 44.00, no tax, prepaid
    credits 10.00: 34.00 payable, charged once to the card; our wallet follows Lago's."""
    wallet = credits_for_acme(client)
    issued = lago_engine.issue_invoice(
        external_subscription_id="sub-lago", charges_from=OCT_1, charges_to=NOV_1, fees=PRO
    )
    assert (issued["coupons_amount_cents"], issued["prepaid_credit_amount_cents"]) == (500, 1000)

    lago_invoices_pull()
    drain_outbox()

    invoice = Invoice.objects.get(lago_id=issued["lago_id"])
    assert (
        invoice.fees_amount_cents,
        invoice.coupons_amount_cents,
        invoice.subtotal_amount_cents,
        invoice.taxes_amount_cents,
        invoice.total_amount_cents,
        invoice.prepaid_credit_amount_cents,
        invoice.payable_amount_cents,
    ) == (4900, 500, 4400, 0, 4400, 1000, 3400)
    assert invoice.reconciliation == "matched", invoice.reconciliation_note
    assert invoice.payment_status == "succeeded"
    assert invoice.attempts.get().amount_cents == 3400
    wallet.refresh_from_db()
    assert wallet.balance_cents == 0
    consumed = WalletTransaction.objects.get(kind="consumption")
    assert (consumed.amount_cents, consumed.invoice_id) == (-1000, invoice.pk)
    body = client.get(f"/api/v1/invoices/{invoice.pk}/").json()
    assert (body["coupons_amount_cents"], body["amount_due_cents"]) == (500, 0)


def test_a_credit_note_on_a_lago_invoice_reaches_lago_with_its_fees(
    lago_engine, stripe_enabled, client
):
    """October's 49.00 paid by card; a credit note of 20.00 on the plan's line: 15.00 back
    to the card (our Stripe refund), 5.00 to the credit balance. Lago gets the same items
    (its own fee id), the same split and our id, once; then the void."""
    issued = lago_engine.issue_invoice(
        external_subscription_id="sub-lago", charges_from=OCT_1, charges_to=NOV_1, fees=PRO
    )
    lago_invoices_pull()
    drain_outbox()  # collected, and the payment reported to Lago
    invoice = Invoice.objects.get(lago_id=issued["lago_id"])
    line = invoice.lines.get()
    assert str(line.lago_fee_id) == issued["fees"][0]["lago_id"]

    note = post(
        client,
        "/api/v1/credit_notes/",
        {
            "invoice": str(invoice.pk),
            "reason": "order_change",
            "items": [{"line_position": line.position, "amount_cents": 2000}],
            "refund_amount_cents": 1500,
            "credit_amount_cents": 500,
        },
    )
    drain_outbox()

    [remote] = lago_engine.credit_notes
    remote = dict(remote)
    assert remote["lago_invoice_id"] == issued["lago_id"]
    assert [(i["fee"]["lago_id"], i["amount_cents"]) for i in remote["items"]] == [
        (issued["fees"][0]["lago_id"], 2000)
    ]
    assert (
        remote["total_amount_cents"],
        remote["refund_amount_cents"],
        remote["credit_amount_cents"],
    ) == (2000, 1500, 500)
    assert remote["metadata"] == {"credit_note_id": note["id"]}
    ours = CreditNote.objects.get()
    assert (str(ours.lago_id), ours.lago_number, ours.needs_review) == (
        remote["lago_id"],
        remote["number"],
        False,
    )
    assert [r["amount"] for r in stripe_refunds(stripe_enabled, invoice)] == [1500]

    creates = [r for r in lago_engine.requests if r["path"] == "/api/v1/credit_notes"]
    assert [r["method"] for r in creates] == ["GET", "POST"]  # looked for, made once

    # A second note, to the credit balance only, voided before it is used: voided in Lago.
    second = post(
        client,
        "/api/v1/credit_notes/",
        {
            "invoice": str(invoice.pk),
            "reason": "other",
            "items": [{"line_position": line.position, "amount_cents": 300}],
            "credit_amount_cents": 300,
        },
    )
    drain_outbox()
    post(client, f"/api/v1/credit_notes/{second['id']}/void/", {})
    drain_outbox()
    assert [n["credit_status"] for n in lago_engine.credit_notes] == ["available", "voided"]


def test_a_one_off_invoice_is_issued_by_lago_and_collected(lago_engine, client):
    """A setup fee of 150.00 and 2.5 support hours at 80.00 = 350.00, asked of Lago; the
    invoice Lago issues becomes ours (one invoice, not two), and is charged once."""
    for code, cents in (("setup_fee", 15000), ("support_hours", 8000)):
        post(
            client,
            "/api/v1/add_ons/",
            {"code": code, "name": code, "amount_cents": cents, "amount_currency": "USD"},
        )
    drain_outbox()
    assert set(lago_engine.add_ons) == {"setup_fee", "support_hours"}
    assert AddOn.objects.filter(lago_id__isnull=True).count() == 0

    asked = post(
        client,
        "/api/v1/invoices/",
        {
            "customer": "acme",
            "currency": "USD",
            "fees": [
                {"add_on_code": "setup_fee"},
                {"add_on_code": "support_hours", "units": "2.5"},
            ],
        },
    )
    assert (asked["engine"], asked["status"], asked["total_amount_cents"]) == (
        "lago",
        "draft",
        35000,
    )
    drain_outbox()

    invoice = Invoice.objects.get(pk=asked["id"])
    remote = lago_engine.invoices[str(invoice.lago_id)]
    assert (remote["invoice_type"], remote["fees_amount_cents"]) == ("one_off", 35000)
    assert [f["units"] for f in remote["fees"]] == ["1", "2.5"]
    assert (invoice.status, invoice.invoice_type, invoice.reconciliation) == (
        "finalized",
        "one_off",
        "matched",
    )
    assert invoice.payment_status == "succeeded"
    assert invoice.attempts.get().amount_cents == 35000
    lago_invoices_pull()
    assert Invoice.objects.filter(invoice_type="one_off").count() == 1


def test_a_one_off_invoice_lago_made_before_a_lost_answer_is_adopted(lago_engine, client):
    post(
        client,
        "/api/v1/add_ons/",
        {"code": "setup_fee", "name": "Setup", "amount_cents": 15000, "amount_currency": "USD"},
    )
    drain_outbox()
    asked = post(
        client,
        "/api/v1/invoices/",
        {"customer": "acme", "currency": "USD", "fees": [{"add_on_code": "setup_fee"}]},
    )
    # Lago made it, but the answer never came back to the handler.
    made = lago.invoice_one_off_create(
        external_customer_id="acme",
        currency="USD",
        fees=(
            OneOffFeeData("setup_fee", units=Decimal(1), unit_amount_cents=15000, description=""),
        ),
    )

    drain_outbox()

    assert str(Invoice.objects.get(pk=asked["id"]).lago_id) == made.lago_id
    one_offs = [i for i in lago_engine.invoices.values() if i["invoice_type"] == "one_off"]
    assert len(one_offs) == 1
    assert Invoice.objects.count() == 1
