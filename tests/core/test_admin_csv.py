"""CSV exports of invoices, credit notes and payments: the rows the list's filters select,
money in major and minor units, formulas defused, and the view permission required."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from billing.invoicing.credit_notes import ItemRequest, credit_note_create
from core.admin_csv import safe_cell
from tests.factories import CustomerFactory, InvoiceFactory, PaymentAttemptFactory

pytestmark = pytest.mark.django_db


def rows(response) -> list[dict]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_invoice_export_follows_the_filters_and_writes_both_units(admin_client):
    evil = CustomerFactory(external_id="evil", name='=HYPERLINK("http://x")', currency="USD")
    late = InvoiceFactory(
        subscription=None,
        customer=evil,
        lines=[{"description": "Fee", "amount_cents": 5880}],
        finalized=True,
        due_date=timezone.localdate() - timedelta(days=12),
        paid_amount_cents=880,
    )
    InvoiceFactory(subscription=None, customer=evil)  # a draft: filtered out below

    exported = rows(admin_client.get("/admin/invoicing/invoice/export.csv?status__exact=finalized"))

    assert len(exported) == 1
    row = exported[0]
    assert row["number"] == late.number
    assert row["customer_name"] == '\'=HYPERLINK("http://x")'  # shown as text, not run
    assert (row["total"], row["total_minor_units"]) == ("58.80", "5880")
    assert (row["amount_due"], row["amount_due_minor_units"], row["days_overdue"]) == (
        "50.00",
        "5000",
        "12",
    )
    page = admin_client.get("/admin/invoicing/invoice/?status__exact=finalized").content.decode()
    assert "/admin/invoicing/invoice/export.csv?status__exact=finalized" in page


def test_payments_and_credit_notes_export_and_need_the_view_permission(admin_client):
    attempt = PaymentAttemptFactory(invoice__subscription__customer__name="+cmd|' /C calc'!A0")
    exported = rows(admin_client.get("/admin/payments/paymentattempt/export.csv"))
    assert [(r["invoice"], r["status"], r["failure_code"]) for r in exported] == [
        (attempt.invoice.number, "failed", "card_declined")
    ]
    assert exported[0]["customer_name"] == "'+cmd|' /C calc'!A0"
    assert (exported[0]["amount"], exported[0]["currency"]) == (
        f"{attempt.amount_cents / 100:.2f}",
        "USD",
    )
    assert rows(admin_client.get("/admin/invoicing/creditnote/export.csv")) == []

    for path in ("invoicing/creditnote", "payments/paymentattempt"):
        listing = admin_client.get(f"/admin/{path}/?status__exact=failed").content.decode()
        assert f"/admin/{path}/export.csv?status__exact=failed" in listing, path

    clerk = staff("view_customer")
    for path in ("invoicing/invoice", "invoicing/creditnote", "payments/paymentattempt"):
        assert clerk.get(f"/admin/{path}/export.csv").status_code == 403, path
    assert rows(staff("view_invoice").get("/admin/invoicing/invoice/export.csv"))


def staff(*codenames: str) -> Client:
    user = User.objects.create_user(f"clerk-{'-'.join(codenames)}", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    browser = Client()
    browser.force_login(user)
    return browser


def test_every_invoice_column_in_the_currency_s_own_unit(admin_client):
    tokyo = CustomerFactory(external_id="tokyo", name="@SUM(A1)", currency="JPY")
    invoice = InvoiceFactory(
        subscription=None,
        customer=tokyo,
        lines=[
            {"description": "Fee", "amount_cents": 5880},
            {"description": "Promo", "amount_cents": -880, "fee_type": "coupon"},
        ],
        finalized=True,
        paid_amount_cents=1000,
    )

    (row,) = rows(admin_client.get("/admin/invoicing/invoice/export.csv"))

    assert list(row)[:10] == [
        "number",
        "customer",
        "customer_name",
        "currency",
        "invoice_type",
        "status",
        "payment_status",
        "issued_at",
        "due_date",
        "days_overdue",
    ]
    money = [h for h in row if h.endswith("_minor_units")]
    assert money == [
        f"{name}_minor_units"
        for name in (
            "fees",
            "coupons",
            "subtotal",
            "taxes",
            "total",
            "prepaid_credit",
            "credit_balance",
            "paid",
            "offset",
            "credited",
            "refunded",
            "amount_due",
        )
    ]
    # JPY has no minor unit: major and minor are the same integer, no ".00".
    assert (row["fees"], row["coupons"], row["subtotal"], row["total"]) == (
        "5880",
        "880",
        "5000",
        "5000",
    )
    assert (row["paid"], row["amount_due"], row["amount_due_minor_units"]) == (
        "1000",
        "4000",
        "4000",
    )
    assert row["customer_name"] == "'@SUM(A1)"
    assert row["number"] == invoice.number and row["days_overdue"] == "0"
    assert row["issued_at"] == invoice.issued_at.isoformat()


def test_a_credit_note_row(admin_client):
    invoice = InvoiceFactory(
        subscription=None,
        customer=CustomerFactory(external_id="acme", name="-Acme-"),
        lines=[{"description": "Fee", "amount_cents": 5880}],
        finalized=True,
    )
    note = credit_note_create(
        invoice=invoice,
        reason="order_change",
        items=[ItemRequest(line_id=invoice.lines.get().pk, amount_cents=1050)],
        offset_amount_cents=1050,
    )

    (row,) = rows(admin_client.get("/admin/invoicing/creditnote/export.csv"))

    assert (row["number"], row["invoice"], row["customer"], row["customer_name"]) == (
        note.number,
        invoice.number,
        "acme",
        "'-Acme-",
    )
    assert (row["reason"], row["status"], row["refund_status"]) == (
        "order_change",
        note.status,
        note.refund_status,
    )
    assert (row["total"], row["offset"], row["refund"], row["credit"]) == (
        "10.50",
        "10.50",
        "0.00",
        "0.00",
    )
    assert row["offset_minor_units"] == "1050"


def test_a_hand_edited_filter_goes_back_to_the_list(admin_client):
    response = admin_client.get("/admin/invoicing/invoice/export.csv?no_such_field=1")
    assert response.status_code == 302
    assert response["Location"] == "/admin/invoicing/invoice/?e=1"


def test_negative_amounts_stay_numbers():
    assert safe_cell(-1200) == "-1200"
    assert safe_cell("-1200") == "'-1200"  # text that looks like a formula is defused
