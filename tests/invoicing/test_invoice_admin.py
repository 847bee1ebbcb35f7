"""The invoice admin: staff see invoices, their lines and payment attempts, run the
services as actions (each refusal explained, never a 500), and download the PDF."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.invoicing.models import Invoice
from billing.invoicing.services import invoice_finalize
from billing.payments.models import PaymentAttempt
from tests.factories import InvoiceFactory, PaymentAttemptFactory
from tests.helpers.catalog import Catalog

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/invoicing/invoice/"


def draft(catalog: Catalog, external_id: str, plan: str = "pro") -> Invoice:
    """October's draft of a new subscription of acme's, with the lines generation gives
    a month without usage (the plan's fee, then api_calls and tokens at 0)."""
    return InvoiceFactory(
        subscription__external_id=external_id,
        subscription__customer=catalog.acme,
        subscription__plan=getattr(catalog, plan),
    )


def finalized(catalog: Catalog, external_id: str, plan: str = "pro") -> Invoice:
    """The same, finalized by the service: numbered AIP-…, payment asked for."""
    return Invoice.objects.get(pk=invoice_finalize(invoice=draft(catalog, external_id, plan)).pk)


def act(admin_client, action: str, *invoices: Invoice, confirm: bool = True) -> str:
    data = {"action": action, "_selected_action": [str(i.pk) for i in invoices]}
    if confirm:
        data["apply"] = "1"
    response = admin_client.post(CHANGELIST, data, follow=True)
    assert response.status_code == 200
    return response.content.decode()


def staff(*codenames: str) -> Client:
    user = User.objects.create_user("clerk", password="x", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="invoicing", codename__in=codenames)
    )
    browser = Client()
    browser.force_login(user)
    return browser


def test_the_list_and_the_change_page_show_lines_attempts_and_why(admin_client, catalog):
    invoice = finalized(catalog, "sub-show")
    PaymentAttemptFactory(
        invoice=invoice,
        status=PaymentAttempt.Status.FAILED,
        stripe_payment_intent_id="pi_declined_1",
        failure_code="card_declined",
        failure_message="Your card has insufficient funds.",
    )

    listing = admin_client.get(f"{CHANGELIST}?status__exact=finalized")
    page = admin_client.get(f"{CHANGELIST}{invoice.pk}/change/")

    assert listing.status_code == 200
    row = listing.content.decode()
    for shown in ("AIP-000001", "acme", "49.00 USD"):
        assert shown in row, shown
    assert page.status_code == 200
    body = page.content.decode()
    for shown in (
        "Pro in arrears",  # a line
        "api_calls",
        "pi_declined_1",  # an attempt, with Stripe's reason
        "card_declined",
        "Your card has insufficient funds.",
        # finalized without Stripe configured: why nothing is collected
        "Payments are not configured",
        f"/admin/invoicing/invoice/{invoice.pk}/pdf/",
        "Download PDF",
    ):
        assert shown in body, shown
    # Read-only: no field is editable, nothing can be added or deleted.
    assert 'name="number"' not in body and "_save" not in body
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_client.get(f"{CHANGELIST}{invoice.pk}/delete/").status_code == 403
    for url in (
        "/admin/payments/paymentattempt/?q=pi_declined_1",
        "/admin/invoicing/invoicesequence/",
    ):
        response = admin_client.get(url)
        assert response.status_code == 200 and "AIP-" in response.content.decode(), url
    attempt = PaymentAttempt.objects.get()
    assert (
        admin_client.get(f"/admin/payments/paymentattempt/{attempt.pk}/change/").status_code == 200
    )
    # Filters and search answer.
    for query in ("q=sub-show", "q=AIP-000001", "currency=USD", "collection=blocked"):
        response = admin_client.get(f"{CHANGELIST}?{query}")
        assert response.status_code == 200 and "AIP-000001" in response.content.decode(), query


def test_the_list_makes_the_same_queries_for_one_invoice_or_many(admin_client, catalog):
    finalized(catalog, "sub-q0")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(CHANGELIST).status_code == 200
        return len(captured)

    one = queries()
    for name in ("sub-q1", "sub-q2", "sub-q3"):
        finalized(catalog, name, plan="starter")

    assert queries() == one


def test_the_finalize_action_numbers_drafts_and_explains_refusals(admin_client, catalog):
    first, second = draft(catalog, "sub-f1"), draft(catalog, "sub-f2")

    confirm = act(admin_client, "finalize", first, confirm=False)
    first.refresh_from_db()
    assert "Finalize invoices" in confirm and first.status == "draft"  # asked, not done

    done = act(admin_client, "finalize", first, second)
    again = act(admin_client, "finalize", first)

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.number) == ("finalized", "AIP-000001")
    assert (second.status, second.number) == ("finalized", "AIP-000002")
    assert first.issued_at is not None
    assert "finalized" in done and "AIP-000001" in done and "AIP-000002" in done
    assert "2 invoice(s) finalized: AIP-000001, AIP-000002." in done
    # Without Stripe, finalizing succeeds but staff are told payment is blocked.
    assert "Payment blocked for 2 of them: Payments are not configured" in done
    assert "not finalized" in again and "Cannot finalize invoice AIP-000001" in again


def test_an_action_on_all_matching_invoices_keeps_the_filter(admin_client, catalog):
    drafts = [draft(catalog, f"sub-all-{i}") for i in range(3)]
    finalized(catalog, "sub-all-done", plan="starter")
    url = f"{CHANGELIST}?status__exact=draft"
    selection = {"action": "finalize", "_selected_action": [str(drafts[0].pk)]}

    confirm = admin_client.post(url, {**selection, "select_across": "1"}).content.decode()
    done = admin_client.post(
        url, {**selection, "select_across": "1", "apply": "1"}, follow=True
    ).content.decode()

    assert "3 invoices selected" in confirm and 'name="select_across" value="1"' in confirm
    assert "3 invoice(s) finalized" in done and "not finalized" not in done
    assert not Invoice.objects.filter(status="draft").exists()


def test_voiding_a_paid_invoice_is_refused_and_changes_nothing(admin_client, catalog):
    paid = finalized(catalog, "sub-paid")
    Invoice.objects.filter(pk=paid.pk).update(payment_status="succeeded")
    unpaid = draft(catalog, "sub-unpaid", plan="starter")

    body = act(admin_client, "void", paid, unpaid)

    paid.refresh_from_db()
    unpaid.refresh_from_db()
    assert "AIP-000001: not voided" in body
    assert "Cannot void invoice AIP-000001: it is finalized, payment succeeded." in body
    assert (paid.status, paid.payment_status, paid.voided_at) == ("finalized", "succeeded", None)
    # The refusal of one does not stop the others.
    assert unpaid.status == "voided" and "1 invoice(s) voided" in body


def test_retry_payment_asks_for_payment_or_says_why_not(admin_client, catalog):
    owed = finalized(catalog, "sub-owed")
    still_draft = draft(catalog, "sub-draft", plan="starter")

    asked = act(admin_client, "retry_payment", owed, still_draft, confirm=False)
    body = act(admin_client, "retry_payment", owed, still_draft)

    assert "charged to the default card now" in asked  # confirmed first, with the amount
    assert "1 invoice(s) queued for payment: AIP-000001." in body
    assert "Payment blocked for 1 of them: Payments are not configured" in body
    assert "not queued for payment: Cannot pay invoice" in body


def test_the_pdf_is_a_pdf_for_staff_only(admin_client, catalog):
    invoice = finalized(catalog, "sub-pdf")
    url = f"{CHANGELIST}{invoice.pk}/pdf/"

    response = admin_client.get(url)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert "AIP-000001" in response["Content-Disposition"]
    assert (
        admin_client.get(f"{CHANGELIST}00000000-0000-0000-0000-000000000000/pdf/").status_code
        == 404
    )

    customer_user = User.objects.create_user("customer", password="x")
    outsider = Client()
    outsider.force_login(customer_user)
    refused = outsider.get(url)
    assert refused.status_code == 302 and "/admin/login/" in refused["Location"]
    assert not refused.content.startswith(b"%PDF")
    assert Client().get(url).status_code == 302  # not logged in
    assert staff().get(url).status_code == 403  # staff, without the invoice permission


def test_viewers_see_invoices_but_cannot_run_actions(catalog):
    invoice = draft(catalog, "sub-view")
    viewer = staff("view_invoice")

    page = viewer.get(f"{CHANGELIST}{invoice.pk}/change/")
    listing = viewer.get(CHANGELIST)
    viewer.post(
        CHANGELIST,
        {"action": "finalize", "_selected_action": [str(invoice.pk)], "apply": "1"},
    )

    assert page.status_code == 200 and "Pro in arrears" in page.content.decode()
    assert listing.status_code == 200 and 'value="finalize"' not in listing.content.decode()
    assert viewer.get(f"{CHANGELIST}{invoice.pk}/pdf/").status_code == 200
    invoice.refresh_from_db()
    assert invoice.status == "draft"


def test_line_units_are_written_in_plain_digits(admin_client, catalog):
    """Decimal.normalize() alone showed 2,000 units as "2E+3" and 10.00 as "1E+1"."""
    invoice = draft(catalog, "sub-digits")
    invoice.lines.filter(position=2).update(units=Decimal(2000), unit_amount=Decimal("10.00"))

    body = admin_client.get(f"{CHANGELIST}{invoice.pk}/change/").content.decode()

    assert ">2000<" in body and ">10<" in body
    assert "E+" not in body
