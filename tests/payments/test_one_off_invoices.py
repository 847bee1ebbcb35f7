"""One-off invoices of add-ons, issued at once and collected on a localstripe card, in
hand-computed cents: a setup fee 150.00 x 1 and support hours 2.5 x 80.00 = 350.00, tax
20 % = 70.00, total 420.00."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from billing.invoicing.models import Invoice
from customers.services import payment_method_add
from tests.factories import CustomerFactory
from tests.helpers.outbox import drain_outbox

pytestmark = pytest.mark.django_db


def add_on(client, code: str, amount_cents: int, currency: str = "USD") -> None:
    body = {
        "code": code,
        "name": code.replace("_", " ").title(),
        "amount_cents": amount_cents,
        "amount_currency": currency,
    }
    response = client.post("/api/v1/add_ons/", body, format="json")
    assert response.status_code == 201, response.json()


ORDER = {
    "customer": "payer",
    "currency": "USD",
    "fees": [
        {"add_on_code": "setup_fee"},
        {"add_on_code": "support_hours", "units": "2.5", "description": "Support, November"},
    ],
}


def test_a_one_off_invoice_is_issued_and_paid_by_card(client, stripe_enabled):
    payer = CustomerFactory(external_id="payer", currency="USD", tax_rate=Decimal(20))
    drain_outbox()
    payer.refresh_from_db()
    payment_method_add(customer=payer, stripe_payment_method_id="pm_card_visa", set_default=True)
    add_on(client, "setup_fee", 15000)
    add_on(client, "support_hours", 8000)

    response = client.post("/api/v1/invoices/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="o-1")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["invoice_type"], body["status"], body["subscription"]) == (
        "one_off",
        "finalized",
        None,
    )
    assert [
        (line["description"], line["units"], line["amount_cents"]) for line in body["lines"]
    ] == [
        ("Setup Fee", "1.000000000000", 15000),
        ("Support, November", "2.500000000000", 20000),
    ]
    assert (body["subtotal_amount_cents"], body["taxes_amount_cents"]) == (35000, 7000)
    assert body["total_amount_cents"] == 42000
    again = client.post("/api/v1/invoices/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="o-1")
    assert again.json()["id"] == body["id"]
    assert Invoice.objects.filter(invoice_type="one_off").count() == 1

    drain_outbox()

    invoice = Invoice.objects.get(pk=body["id"])
    assert (invoice.payment_status, invoice.paid_amount_cents) == ("succeeded", 42000)
    assert invoice.attempts.get().amount_cents == 42000


def test_bad_one_off_invoices_are_4xx_and_write_nothing(client, db):
    CustomerFactory(external_id="payer", currency="USD")
    add_on(client, "setup_fee", 15000)
    add_on(client, "euro_fee", 1000, currency="EUR")

    def post(body):
        return client.post("/api/v1/invoices/", body, format="json")

    assert post({**ORDER, "fees": []}).status_code == 400
    assert post({**ORDER, "customer": "nobody"}).status_code == 404
    assert post({**ORDER, "fees": [{"add_on_code": "nope"}]}).status_code == 404
    wrong = post({**ORDER, "currency": "EUR", "fees": [{"add_on_code": "setup_fee"}]})
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["code"] == "currency_mismatch"
    euro = post({**ORDER, "fees": [{"add_on_code": "euro_fee"}]})
    assert euro.status_code == 422
    assert post({**ORDER, "fees": [{"add_on_code": "setup_fee", "units": "-1"}]}).status_code == 400
    assert (
        post({**ORDER, "fees": [{"add_on_code": "setup_fee", "units": "1e30"}]}).status_code == 400
    )
    assert Invoice.objects.count() == 0
    assert (
        client.post(
            "/api/v1/add_ons/",
            {"code": "setup_fee", "name": "x", "amount_cents": 1, "amount_currency": "USD"},
            format="json",
        ).status_code
        == 409
    )


def test_staff_preview_then_create_a_one_off_invoice_in_the_admin(client):
    """150.00 + 2.5 x 80.00 = 350.00, tax 20 % = 70.00: shown before it is created, then
    created by the same service as the API's; without the permission, refused."""
    CustomerFactory(external_id="payer", currency="USD", tax_rate=Decimal(20))
    add_on(client, "setup_fee", 15000)
    add_on(client, "support_hours", 8000)
    form = {
        "customer": "payer",
        "add_on_1": "setup_fee",
        "add_on_2": "support_hours",
        "units_2": "2.5",
        "description_2": "Support, November",
    }
    url = "/admin/invoicing/invoice/one_off/"
    clerk = User.objects.create_user("clerk", password="x", is_staff=True)
    clerk.user_permissions.set(
        Permission.objects.filter(
            codename__in=["view_invoice", "view_addon", "create_one_off_invoice"]
        )
    )
    browser = Client()
    browser.force_login(clerk)
    assert "Create a one-off invoice" in browser.get("/admin/invoicing/invoice/").content.decode()

    preview = browser.post(url, {**form, "preview": "1"}).content.decode()

    assert "Support, November" in preview
    assert all(amount in preview for amount in ("350.00", "70.00", "420.00"))
    assert Invoice.objects.count() == 0

    created = browser.post(url, {**form, "confirm": "1"})

    invoice = Invoice.objects.get()
    assert created.status_code == 302 and str(invoice.pk) in created["Location"]
    assert (invoice.invoice_type, invoice.status, invoice.total_amount_cents) == (
        "one_off",
        "finalized",
        42000,
    )
    clerk.user_permissions.set(Permission.objects.filter(codename__in=["view_invoice"]))
    clerk = User.objects.get(pk=clerk.pk)  # permissions are cached on the instance
    browser.force_login(clerk)
    assert browser.post(url, {**form, "confirm": "1"}).status_code == 403
    assert (
        "Create a one-off invoice" not in browser.get("/admin/invoicing/invoice/").content.decode()
    )
