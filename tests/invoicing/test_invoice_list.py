"""The invoice list sorted by what staff chase: the amount due and the days overdue, in
SQL, as the columns read them (a draft, a voided or a paid invoice owes nothing)."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.utils import timezone

from billing.invoicing.models import Invoice
from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


def column(name: str) -> int:
    """The list's `o=` index of a column (1-based, after the checkbox)."""
    return admin.site.get_model_admin(Invoice).list_display.index(name) + 1


def listed(client, ordering: str) -> list[str]:
    page = client.get(f"/admin/invoicing/invoice/?o={ordering}")
    assert page.status_code == 200
    return [invoice.lines.first().description for invoice in page.context["cl"].result_list]


def test_the_list_sorts_by_amount_due_and_days_overdue(admin_client):
    acme = CustomerFactory(external_id="acme", currency="USD")
    today = timezone.localdate()

    def invoice(name: str, cents: int, late: int, **fields) -> Invoice:
        return InvoiceFactory(
            subscription=None,
            customer=acme,
            lines=[{"description": name, "amount_cents": cents}],
            due_date=today - timedelta(days=late),
            **fields,
        )

    invoice("small-old", 1000, 40, finalized=True)
    invoice("big-new", 9000, 5, finalized=True)
    invoice("mid", 5000, 20, finalized=True, paid_amount_cents=1000)  # 4000 still due
    # Owe nothing, though their totals are the biggest and their due dates the oldest.
    invoice("draft", 90000, 300)
    invoice("voided", 80000, 200, finalized=True, status=Invoice.Status.VOIDED)
    invoice(
        "paid",
        70000,
        100,
        finalized=True,
        paid_amount_cents=70000,
        payment_status=Invoice.PaymentStatus.SUCCEEDED,
    )
    invoice("not-yet-due", 6000, -3, finalized=True)

    by_due = listed(admin_client, f"-{column('amount_due_listed')}")
    by_late = listed(admin_client, f"-{column('overdue_days')}")

    assert by_due[:4] == ["big-new", "not-yet-due", "mid", "small-old"]
    assert set(by_due[4:]) == {"draft", "voided", "paid"}
    assert by_late[:3] == ["small-old", "mid", "big-new"]
    assert set(by_late[3:]) == {"draft", "voided", "paid", "not-yet-due"}
    ascending = listed(admin_client, str(column("amount_due_listed")))
    assert ascending[-4:] == ["small-old", "mid", "not-yet-due", "big-new"]
