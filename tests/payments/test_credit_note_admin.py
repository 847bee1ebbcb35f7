"""Issuing a credit note from the invoice's page in the admin: the totals shown before
confirming, the same service as the API's, and its own permission."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from billing.invoicing.models import CreditNote, Invoice
from billing.invoicing.services import invoice_finalize
from tests.factories import InvoiceFactory

pytestmark = pytest.mark.django_db
LINES = [
    {"description": "Pro", "amount_cents": 4900, "fee_type": "subscription"},
    {"description": "API calls", "amount_cents": 2000, "fee_type": "charge"},
]


def unpaid() -> Invoice:
    """6900 of fees at 20 %: total 8280, unpaid (no card)."""
    draft = InvoiceFactory(
        subscription__customer__tax_rate=Decimal(20), lines=LINES, subscription__external_id="s"
    )
    return invoice_finalize(invoice=draft)


def staff(*codenames: str) -> Client:
    user = User.objects.create_user("clerk", password="x", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="invoicing", codename__in=codenames)
    )
    browser = Client()
    browser.force_login(user)
    return browser


def test_staff_preview_then_issue_a_credit_note_from_the_invoice_page():
    invoice = unpaid()
    line = invoice.lines.get(position=2)
    browser = staff("view_invoice", "view_creditnote", "issue_credit_note")
    page = browser.get(f"/admin/invoicing/invoice/{invoice.pk}/change/").content.decode()
    assert "Issue a credit note" in page and "8,280" in page.replace("82.80", "8,280")
    url = f"/admin/invoicing/invoice/{invoice.pk}/credit_note/"
    form = {"reason": "order_change", f"line_{line.pk}": "1000"}

    preview = browser.post(url, {**form, "preview": "1"})

    shown = preview.content.decode()
    assert preview.status_code == 200 and "Issue credit note" in shown
    # 10.00 + 20 % tax = 12.00, taken off what is owed (82.80 unpaid).
    assert "12.00" in shown and "2.00" in shown
    assert CreditNote.objects.count() == 0

    issued = browser.post(url, {**form, "confirm": "1"}, follow=True)

    note = CreditNote.objects.get()
    assert (note.total_amount_cents, note.offset_amount_cents) == (1200, 1200)
    assert note.created_by == "staff:clerk"
    assert f"Credit note {note.number} issued" in issued.content.decode()
    invoice.refresh_from_db()
    assert invoice.amount_due_cents == 7080
    pdf = browser.get(f"/admin/invoicing/creditnote/{note.pk}/pdf/")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_issuing_needs_its_own_permission_and_refusals_are_explained():
    invoice = unpaid()
    line = invoice.lines.get(position=2)
    url = f"/admin/invoicing/invoice/{invoice.pk}/credit_note/"
    viewer = staff("view_invoice", "view_creditnote")
    assert viewer.get(url).status_code == 403

    User.objects.filter(username="clerk").delete()
    browser = staff("view_invoice", "issue_credit_note")
    refused = browser.post(
        url,
        {
            "reason": "other",
            f"line_{line.pk}": "1000",
            "refund_amount_cents": "1200",
            "preview": "1",
        },
    )
    assert refused.status_code == 200
    assert "can be refunded (paid less refunded)" in refused.content.decode()
    assert "Issue credit note" not in refused.content.decode()
    assert CreditNote.objects.count() == 0
