"""CSV exports of invoices, credit notes and payments: the rows the list's filters select,
money in major and minor units, formulas defused, and the view permission required."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

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
    attempt = PaymentAttemptFactory()
    exported = rows(admin_client.get("/admin/payments/paymentattempt/export.csv"))
    assert [(r["invoice"], r["status"], r["failure_code"]) for r in exported] == [
        (attempt.invoice.number, "failed", "card_declined")
    ]
    assert rows(admin_client.get("/admin/invoicing/creditnote/export.csv")) == []

    clerk = User.objects.create_user("clerk", password="x", is_staff=True)
    clerk.user_permissions.set(Permission.objects.filter(codename="view_customer"))
    browser = Client()
    browser.force_login(clerk)
    assert browser.get("/admin/payments/paymentattempt/export.csv").status_code == 403


def test_negative_amounts_stay_numbers():
    assert safe_cell(-1200) == "-1200"
    assert safe_cell("-1200") == "'-1200"  # text that looks like a formula is defused


def test_the_invoice_list_sorts_by_amount_due_and_days_overdue(admin_client):
    acme = CustomerFactory(external_id="acme", currency="USD")
    made = {
        name: InvoiceFactory(
            subscription=None,
            customer=acme,
            lines=[{"description": name, "amount_cents": cents}],
            finalized=True,
            due_date=timezone.localdate() - timedelta(days=late),
        )
        for name, cents, late in (("small-old", 1000, 40), ("big-new", 9000, 5), ("mid", 5000, 20))
    }

    def order(o: str) -> list[str]:
        listed = admin_client.get(f"/admin/invoicing/invoice/?o={o}").context["cl"].result_list
        return [invoice.lines.get().description for invoice in listed]

    # Columns: number, customer, issued, total, amount due (5), due date, days overdue (7).
    assert order("-5") == ["big-new", "mid", "small-old"]
    assert order("-7") == ["small-old", "mid", "big-new"]
    assert made["mid"].number in admin_client.get("/admin/invoicing/invoice/").content.decode()
