"""The back office in Chromium, as each role: the dashboard against the database, an
invoice's and a customer's page, and an action each role may or may not run."""

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone
from playwright.sync_api import Page, expect

from backoffice.roles import FINANCE, OPERATOR, VIEWER
from billing.invoicing import receivables
from billing.invoicing.models import Invoice
from core.iso import format_money
from tests.factories import CustomerFactory, InvoiceFactory, PaymentAttemptFactory
from tests.helpers.browser import log_in, shot, staff_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def invoice(customer, total: int, due_in_days: int, **fields) -> Invoice:
    return InvoiceFactory(
        subscription=None,
        customer=customer,
        lines=[{"description": "Pro plan", "amount_cents": total}],
        finalized=True,
        due_date=timezone.localdate() + timedelta(days=due_in_days),
        **fields,
    )


@pytest.fixture
def book():
    """Acme owes 100.00 not yet due and 50.00 twenty days late (its card was declined);
    a draft of 30.00 waits to be issued."""
    acme = CustomerFactory(external_id="acme", name="Acme Corp", currency="USD")
    current = invoice(acme, 10000, due_in_days=10)
    late = invoice(acme, 5000, due_in_days=-20)
    PaymentAttemptFactory(invoice=late, failure_code="card_declined")
    draft = InvoiceFactory(
        subscription=None,
        customer=acme,
        lines=[{"description": "Setup", "amount_cents": 3000}],
    )
    return {"acme": acme, "current": current, "late": late, "draft": draft}


def overdue_in_database() -> int:
    owed = receivables.owed().filter(receivables.in_bucket("overdue", timezone.localdate()))
    return owed.aggregate(total=Sum("due_cents"))["total"] or 0


@pytest.mark.parametrize("role", [VIEWER, OPERATOR, FINANCE])
def test_each_role_sees_the_dashboard_as_the_database_has_it(page: Page, book, role):
    log_in(page, staff_user(role))

    figure = page.locator('[data-figure="Overdue"] .value')
    expect(figure).to_have_text(format_money(overdue_in_database(), "USD"))
    expect(page.locator("#debtors")).to_contain_text("Acme Corp")
    expect(page.locator("#failed-payments")).to_contain_text("card_declined")
    expect(page.locator("#chart-revenue")).to_be_visible()
    assert page.locator('a[href^="/admin/djstripe/"]').count() == 0
    shot(page, f"dashboard-{role.replace(' ', '-')}")

    page.click('[data-figure="Overdue"]')  # the number opens the list behind it
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text(book["late"].number)
    if role == FINANCE:
        shot(page, "overdue-invoices-finance")
        # One click from the dashboard: what the customer owes and has paid.
        page.goto("/admin/")
        page.click("#debtors a:has-text('Acme Corp')")
        expect(page.locator('#story-balance [data-figure="Owed"] .value')).to_have_text(
            "150.00 USD"
        )
        expect(page.locator('#story-balance [data-figure="Paid by card"] .value')).to_have_text(
            "0.00 USD"
        )


def test_a_viewer_reads_invoice_and_customer_pages_and_can_run_nothing(page: Page, book):
    log_in(page, staff_user(VIEWER))
    late = book["late"]

    page.goto(f"/admin/invoicing/invoice/{late.pk}/change/")
    expect(page.locator("#content")).to_contain_text(late.number)
    expect(page.locator("#content")).to_contain_text("50.00 USD")
    shot(page, "invoice-page-viewer")
    page.goto(f"/admin/customers/customer/{book['acme'].pk}/change/")
    owed = receivables.owed(Invoice.objects.filter(customer=book["acme"]))
    expected = owed.aggregate(total=Sum("due_cents"))["total"]
    expect(page.locator('#story-balance [data-figure="Owed"] .value')).to_have_text(
        format_money(expected, "USD")
    )
    expect(page.locator("#story-invoices")).to_contain_text(late.number)
    expect(page.locator("#story-attempts")).to_contain_text("card_declined")
    assert page.locator("#story-note").count() == 0  # a viewer leaves no notes
    shot(page, "customer-page-viewer")

    assert page.locator("a.detail-action").count() == 0  # no button on the page…
    page.goto("/admin/invoicing/invoice/")
    assert page.locator('select[name="action"]').count() == 0  # …nor action on the list
    assert page.locator('a:has-text("Create a one-off invoice")').count() == 0


def test_an_operator_leaves_a_note_on_the_customer_s_timeline(page: Page, book):
    log_in(page, staff_user(OPERATOR))
    page.goto(f"/admin/customers/customer/{book['acme'].pk}/change/")

    page.fill("#story-note textarea", "Ada (AP) promised payment by Friday")
    page.click('#story-note input[type="submit"]')

    expect(page.locator("#story-timeline")).to_contain_text("promised payment by Friday")
    assert book["acme"].staff_notes.get().body == "Ada (AP) promised payment by Friday"
    shot(page, "customer-note-operator")


def run_action(page: Page, invoice: Invoice, action: str) -> None:
    page.goto("/admin/invoicing/invoice/")
    page.check(f'input.action-select[value="{invoice.pk}"]')
    page.select_option('select[name="action"]', action)
    page.click('button[name="index"]')


def test_an_operator_finalizes_a_draft_but_cannot_void(page: Page, book):
    log_in(page, staff_user(OPERATOR))
    options = page.goto("/admin/invoicing/invoice/") and page.locator(
        'select[name="action"] option'
    ).evaluate_all("nodes => nodes.map(n => n.value)")
    assert "finalize" in options and "void" not in options

    run_action(page, book["draft"], "finalize")
    expect(page.locator("#content")).to_contain_text("gets the next invoice number")
    shot(page, "finalize-confirm-operator")
    page.click('input[name="apply"]')

    expect(page.locator(".messagelist")).to_contain_text("finalized")
    book["draft"].refresh_from_db()
    assert (book["draft"].status, bool(book["draft"].number)) == ("finalized", True)
    shot(page, "finalized-operator")


def test_finance_voids_an_unpaid_invoice_from_its_page_after_confirming(page: Page, book):
    log_in(page, staff_user(FINANCE))
    current = book["current"]
    page.goto(f"/admin/invoicing/invoice/{current.pk}/change/")
    shot(page, "invoice-page-finance")

    page.click("a.detail-action:has-text('Void')")
    expect(page.locator("#content")).to_contain_text("cannot be reopened")
    expect(page.locator(".money")).to_have_text(
        "total 100.00 USD; 100.00 USD will no longer be collected"
    )
    expect(page.locator("#content")).to_contain_text(current.number)
    shot(page, "void-confirm-finance")
    current.refresh_from_db()
    assert current.status == "finalized"  # nothing happens before the confirmation
    page.click('input[name="apply"]')

    expect(page.locator(".messagelist")).to_contain_text("voided")
    assert page.url.endswith(f"/admin/invoicing/invoice/{current.pk}/change/")
    current.refresh_from_db()
    assert current.status == "voided"
    shot(page, "voided-finance")
