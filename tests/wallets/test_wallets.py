"""Prepaid credits (Lago's wallets) in hand-computed cents: the ledger is the balance,
the database refuses an overdraft, credits are taken off invoices before the card."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.invoicing.models import Invoice
from billing.invoicing.services import invoice_finalize
from billing.wallets import services
from billing.wallets.models import Wallet, WalletTransaction
from core.exceptions import UnprocessableEntity
from customers.services import payment_method_add
from tests.factories import CustomerFactory, InvoiceFactory
from tests.helpers.concurrency import race
from tests.helpers.outbox import drain_outbox

pytestmark = pytest.mark.django_db


def payer(card: bool = True):
    customer = CustomerFactory(external_id="payer", currency="USD", tax_rate=Decimal(20))
    drain_outbox()
    customer.refresh_from_db()
    if card:
        payment_method_add(
            customer=customer, stripe_payment_method_id="pm_card_visa", set_default=True
        )
    return customer


def draft(customer) -> Invoice:
    """49.00 at 20 % tax: total 58.80."""
    return InvoiceFactory(
        subscription__customer=customer,
        lines=[{"description": "Pro", "amount_cents": 4900, "fee_type": "subscription"}],
    )


def test_a_wallet_pays_part_of_an_invoice_and_the_card_the_rest(client, stripe_enabled):
    customer = payer()
    created = client.post(
        "/api/v1/wallets/",
        {"customer": "payer", "currency": "USD", "granted_credits": "20"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["balance_cents"] == 2000

    invoice = invoice_finalize(invoice=draft(customer))
    drain_outbox()

    invoice.refresh_from_db()
    assert (invoice.total_amount_cents, invoice.prepaid_credit_amount_cents) == (5880, 2000)
    assert invoice.payable_amount_cents == 3880
    assert invoice.attempts.get().amount_cents == 3880
    assert (invoice.payment_status, invoice.paid_amount_cents) == ("succeeded", 3880)
    wallet = client.get("/api/v1/customers/payer/wallet/").json()
    assert wallet["balance_cents"] == 0
    ledger = client.get(f"/api/v1/wallets/{created.json()['id']}/transactions/").json()
    assert [(e["kind"], e["amount_cents"]) for e in ledger["results"]] == [
        ("consumption", -2000),
        ("grant", 2000),
    ]
    body = client.get(f"/api/v1/invoices/{invoice.pk}/").json()
    assert (body["prepaid_credit_amount_cents"], body["amount_due_cents"]) == (2000, 0)


def test_a_wallet_covering_the_whole_invoice_settles_it_without_the_card(stripe_enabled):
    customer = payer(card=False)
    services.wallet_create(customer=customer, currency="USD", granted_credits=Decimal(100))

    invoice = invoice_finalize(invoice=draft(customer))

    assert (invoice.prepaid_credit_amount_cents, invoice.payment_status) == (5880, "succeeded")
    assert Wallet.objects.get().balance_cents == 10000 - 5880


def test_a_voided_invoice_gives_its_credits_back_once(client, db):
    """20.00 of credits taken off a 58.80 invoice the card has not paid; voided, the 20.00
    go back to the wallet (Lago's recredit), once."""
    customer = payer(card=False)
    wallet = services.wallet_create(customer=customer, currency="USD", granted_credits=Decimal(20))
    invoice = invoice_finalize(invoice=draft(customer))
    assert (invoice.prepaid_credit_amount_cents, invoice.payable_amount_cents) == (2000, 3880)

    response = client.post(f"/api/v1/invoices/{invoice.pk}/void/")

    assert response.status_code == 200, response.json()
    wallet.refresh_from_db()
    assert wallet.balance_cents == 2000
    ledger = list(WalletTransaction.objects.order_by("id").values_list("kind", "amount_cents"))
    assert ledger == [("grant", 2000), ("consumption", -2000), ("recredit", 2000)]
    assert services.credits_recredit(invoice_id=invoice.pk) == 0  # asked again: nothing


def test_a_wallet_left_below_its_threshold_tops_itself_up_once(stripe_enabled):
    """Threshold 5 credits: an invoice takes the wallet's 20.00; 1 credit is granted and
    20 credits bought on a top-up invoice of 20.00 charged to the card, credited once
    paid. A second invoice while a top-up is unpaid buys nothing more."""
    customer = payer()
    wallet = services.wallet_create(
        customer=customer,
        currency="USD",
        granted_credits=Decimal(20),
        top_up_threshold_credits=Decimal(5),
        top_up_paid_credits=Decimal(20),
        top_up_granted_credits=Decimal(1),
    )

    invoice_finalize(invoice=draft(customer))
    top_up = Invoice.objects.get(invoice_type="credit")
    assert (top_up.total_amount_cents, top_up.payment_status) == (2000, "pending")
    drain_outbox()

    wallet.refresh_from_db()
    assert wallet.balance_cents == 100 + 2000
    top_up.refresh_from_db()
    assert top_up.attempts.get().amount_cents == 2000
    kinds = list(wallet.transactions.order_by("id").values_list("kind", "amount_cents"))
    assert kinds == [("grant", 2000), ("consumption", -2000), ("grant", 100), ("purchase", 2000)]


def test_no_second_top_up_while_one_is_unpaid(db):
    customer = payer(card=False)
    services.wallet_create(
        customer=customer,
        currency="USD",
        granted_credits=Decimal(70),
        top_up_threshold_credits=Decimal(50),
        top_up_paid_credits=Decimal(100),
    )

    invoice_finalize(invoice=draft(customer))  # 58.80 of 70.00: 11.20 left, below 50
    invoice_finalize(invoice=draft(customer))  # takes the rest; the top-up is still unpaid

    assert Invoice.objects.filter(invoice_type="credit").count() == 1


def test_a_paid_top_up_credits_the_wallet_once(client, stripe_enabled):
    """50 credits at 0.50 each: an invoice of 25.00, without tax; paid, 2500 reach the
    wallet, however often the payment is settled."""
    payer()
    wallet = client.post(
        "/api/v1/wallets/",
        {"customer": "payer", "currency": "USD", "rate_amount": "0.5"},
        format="json",
    ).json()

    response = client.post(
        f"/api/v1/wallets/{wallet['id']}/top_up/", {"credits": "50"}, format="json"
    )

    assert response.status_code == 201, response.json()
    top_up = response.json()
    assert (top_up["invoice_type"], top_up["total_amount_cents"]) == ("credit", 2500)
    assert Wallet.objects.get().balance_cents == 0  # not before it is paid
    drain_outbox()
    drain_outbox()
    assert Wallet.objects.get().balance_cents == 2500
    assert client.get(f"/api/v1/wallets/{wallet['id']}/").json()["balance_credits"] == "50.000000"
    assert WalletTransaction.objects.filter(kind="purchase").count() == 1
    assert (
        services.wallet_purchased(
            wallet_id=wallet["id"], invoice_id=top_up["id"], amount_cents=2500
        )
        is False
    )


def test_the_database_refuses_an_overdraft_and_any_change_to_the_ledger(db):
    customer = CustomerFactory(currency="USD")
    wallet = services.wallet_create(customer=customer, currency="USD", granted_credits=Decimal(5))

    with pytest.raises(IntegrityError), transaction.atomic():
        WalletTransaction.objects.create(
            wallet=wallet, kind="consumption", amount_cents=-501, credits=Decimal("5.01")
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        WalletTransaction.objects.filter(wallet=wallet).update(amount_cents=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        WalletTransaction.objects.filter(wallet=wallet).delete()
    wallet.refresh_from_db()
    assert wallet.balance_cents == 500


def test_terminated_and_expired_wallets_lose_what_is_left(db):
    customer = CustomerFactory(currency="USD")
    wallet = services.wallet_create(customer=customer, currency="USD", granted_credits=Decimal(5))
    Wallet.objects.filter(pk=wallet.pk).update(expiration_at="2026-01-01T00:00:00Z")

    assert services.wallets_expire() == 1

    wallet.refresh_from_db()
    assert (wallet.status, wallet.balance_cents) == ("terminated", 0)
    assert (
        services.credits_consume(
            customer_id=customer.pk, currency="USD", amount_cents=100, invoice_id=None
        )
        == 0
    )


def test_bad_wallet_requests_are_4xx(client, db):
    CustomerFactory(external_id="payer", currency="USD")
    post = client.post
    assert (
        post(
            "/api/v1/wallets/", {"customer": "payer", "currency": "EUR"}, format="json"
        ).status_code
        == 422
    )
    assert (
        post(
            "/api/v1/wallets/", {"customer": "nobody", "currency": "USD"}, format="json"
        ).status_code
        == 404
    )
    wallet = post(
        "/api/v1/wallets/", {"customer": "payer", "currency": "USD"}, format="json"
    ).json()
    for credits in ("-1", "0", "1e30", "abc"):
        grant = post(f"/api/v1/wallets/{wallet['id']}/grant/", {"credits": credits}, format="json")
        assert grant.status_code == 400, credits
    assert post(f"/api/v1/wallets/{wallet['id']}/terminate/").status_code == 200
    again = post(f"/api/v1/wallets/{wallet['id']}/grant/", {"credits": "1"}, format="json")
    assert again.status_code == 409


@pytest.mark.django_db(transaction=True)
def test_racing_finalizations_never_spend_one_credit_twice(stripe_enabled):
    customer = payer(card=False)
    services.wallet_create(customer=customer, currency="USD", granted_credits=Decimal(60))
    drafts = [draft(customer), draft(customer)]

    race([lambda d=d: invoice_finalize(invoice=d) for d in drafts])

    applied = sorted(
        Invoice.objects.filter(pk__in=[d.pk for d in drafts]).values_list(
            "prepaid_credit_amount_cents", flat=True
        )
    )
    assert applied == [120, 5880]
    assert Wallet.objects.get().balance_cents == 0


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(moves=st.lists(st.tuples(st.booleans(), st.integers(1, 5000)), min_size=1, max_size=8))
def test_the_ledger_sum_is_the_balance_and_never_negative(moves, db):
    """Any run of grants and consumptions: what the database holds as the balance is
    the ledger's sum, and never below zero."""
    with transaction.atomic():
        sid = transaction.savepoint()
        customer = CustomerFactory(currency="USD")
        wallet = services.wallet_create(customer=customer, currency="USD")
        for grant, cents in moves:
            if grant:
                services.wallet_grant(wallet=wallet, credits=Decimal(cents) / 100)
            else:
                services.credits_consume(
                    customer_id=customer.pk, currency="USD", amount_cents=cents, invoice_id=None
                )
            wallet.refresh_from_db()
            total = wallet.transactions.aggregate(s=Sum("amount_cents"))["s"] or 0
            assert wallet.balance_cents == total >= 0
        transaction.savepoint_rollback(sid)


def test_credits_worth_less_than_a_cent_are_refused(db):
    customer = CustomerFactory(currency="USD")
    wallet = services.wallet_create(customer=customer, currency="USD")
    with pytest.raises(UnprocessableEntity):
        services.wallet_grant(wallet=wallet, credits=Decimal("0.001"))
