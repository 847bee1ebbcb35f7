"""The invoice list on a 1400 px screen, as finance uses it: every column visible without
scrolling sideways, sorted by the amount due, and exported as filtered."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from backoffice.roles import FINANCE
from tests.factories import CustomerFactory, InvoiceFactory
from tests.helpers.browser import log_in, shot, staff_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_finance_sorts_by_amount_due_and_exports_what_it_sees(page: Page):
    # Long names and big amounts: the widest a row gets in practice.
    wide = CustomerFactory(
        external_id="northwind-traders-international-holdings", name="Northwind", currency="USD"
    )
    today = timezone.localdate()
    for cents, late in ((123_456_789, 45), (9_900, 3), (55_000, -10)):
        InvoiceFactory(
            subscription=None,
            customer=wide,
            lines=[{"description": "Platform", "amount_cents": cents}],
            finalized=True,
            due_date=today - timedelta(days=late),
        )
    log_in(page, staff_user(FINANCE))

    page.goto("/admin/invoicing/invoice/?status__exact=finalized")
    page.click("#result_list thead th:has-text('Amount due') a")  # the column's sort link
    page.click("#result_list thead th:has-text('Amount due') a.toggle")  # descending

    first = page.locator("#result_list tbody tr").first
    expect(first).to_contain_text("1,234,567.89")
    # Every column in view: the results box does not scroll sideways (it does, inside
    # itself, when the table is wider than the room left by the navigation and filters).
    results = page.locator("#changelist .results")
    scroll, room = results.evaluate("box => [box.scrollWidth, box.clientWidth]")
    assert scroll <= room, (scroll, room)
    shot(page, "invoice-list-by-amount-due-finance")

    with page.expect_download() as download:
        page.click("a.csv-export")
    exported = list(csv.DictReader(io.StringIO(download.value.path().read_text("utf-8"))))
    assert [row["amount_due"] for row in exported] == ["1234567.89", "550.00", "99.00"]
