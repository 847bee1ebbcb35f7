"""The dashboard's numbers against hand-computed data, and the page that shows them."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from backoffice import selectors
from billing.invoicing.models import Invoice
from tests.factories import (
    CustomerFactory,
    InvoiceFactory,
    OutboxMessageFactory,
    PaymentAttemptFactory,
    PlanFactory,
    SubscriptionFactory,
)

pytestmark = pytest.mark.django_db


def owed(customer, total: int, due_in_days: int, **amounts) -> Invoice:
    """An issued invoice of one line of `total` (no tax), due `due_in_days` from today."""
    return InvoiceFactory(
        subscription=None,
        customer=customer,
        lines=[{"description": "Fee", "amount_cents": total}],
        finalized=True,
        due_date=timezone.localdate() + timedelta(days=due_in_days),
        **amounts,
    )


@pytest.fixture
def book():
    """USD: Pro 49.00 a month, an override at 99.00 a month, a yearly 1,200.00 (100.00 a
    month); a canceled one and a EUR one that count for nothing in USD.
    Owed: 100.00 not yet due; 50.00 with 10.00 paid, 20 days late; 30.00, 45 days late;
    20.00 with 5.00 of prepaid credits, 100 days late. A voided and a paid one owe nothing."""
    acme = CustomerFactory(external_id="acme", name="Acme", currency="USD")
    globex = CustomerFactory(external_id="globex", name="Globex", currency="USD")
    SubscriptionFactory(customer=acme, plan=PlanFactory(amount_cents=4900))
    SubscriptionFactory(
        customer=acme, plan=PlanFactory(amount_cents=4900), overrides={"amount_cents": 9900}
    )
    SubscriptionFactory(customer=globex, plan=PlanFactory(amount_cents=120000, interval="yearly"))
    SubscriptionFactory(customer=globex, plan=PlanFactory(), status="canceled")
    SubscriptionFactory(
        customer=CustomerFactory(currency="EUR"),
        plan=PlanFactory(currency="EUR", amount_cents=7000),
    )
    owed(acme, 10000, due_in_days=10)
    owed(acme, 5000, due_in_days=-20, paid_amount_cents=1000)
    owed(globex, 3000, due_in_days=-45)
    owed(globex, 2000, due_in_days=-100, prepaid_credit_amount_cents=500)
    owed(acme, 7000, due_in_days=-30, status="voided")
    owed(acme, 8000, due_in_days=-30, paid_amount_cents=8000, payment_status="succeeded")
    return acme, globex


def test_mrr_is_the_monthly_plan_fees_of_active_subscriptions(book):
    assert selectors.mrr(currency="USD") == 4900 + 9900 + 10000
    assert selectors.mrr(currency="EUR") == 7000


def test_ageing_and_debtors(book):
    today = timezone.localdate()
    buckets = {
        b.key: (b.amount_cents, b.invoices) for b in selectors.ageing(currency="USD", today=today)
    }
    assert buckets == {
        "current": (10000, 1),
        "1-30": (4000, 1),
        "31-60": (3000, 1),
        "61-90": (0, 0),
        "90+": (1500, 1),
    }
    debtors = selectors.overdue_by_customer(currency="USD", today=today)
    assert [(d.external_id, d.overdue_cents, d.invoices) for d in debtors] == [
        ("globex", 4500, 2),
        ("acme", 4000, 1),
    ]


def test_payments_revenue_and_operations(book):
    acme, _ = book
    now = timezone.now()
    invoice = owed(acme, 4200, due_in_days=0)
    PaymentAttemptFactory(invoice=invoice, succeeded=True, amount_cents=4200)
    PaymentAttemptFactory(invoice=invoice, number=2, failure_code="card_declined")
    PaymentAttemptFactory(
        invoice=invoice, number=3, completed_at=now - timedelta(days=10)
    )  # failed, but not this week
    OutboxMessageFactory(status="failed")
    stuck = OutboxMessageFactory()
    type(stuck).objects.filter(pk=stuck.pk).update(created_at=now - timedelta(hours=1))
    OutboxMessageFactory()  # pending, but recent

    payments = selectors.payments(currency="USD", now=now)
    assert (payments.succeeded, payments.failed, str(payments.success_rate)) == (1, 2, "33.3")
    assert [a.number for a in payments.failed_recent] == [2]
    month = selectors.revenue_by_month(currency="USD", today=timezone.localdate(), months=12)
    assert len(month) == 12
    # Issued this month: 100 + 50 + 30 + 20 + 80 (paid) + 42 = 322.00; the void is not.
    assert (month[-1].invoiced_cents, month[-1].collected_cents) == (32200, 4200)
    ops = selectors.operations(now=now)
    assert (ops.syncs_failed, ops.syncs_waiting, ops.webhooks_failed) == (1, 1, 0)


def test_the_dashboard_is_the_admin_s_first_page_with_links_to_the_lists(book, admin_client):
    page = admin_client.get("/admin/?currency=USD")

    html = page.content.decode()
    assert page.status_code == 200
    assert "248.00" in html and "2,976.00" in html  # MRR, ARR
    assert "185.00" in html and "85.00" in html  # outstanding, overdue
    assert "/admin/invoicing/invoice/?currency=USD&amp;ageing=overdue" in html
    overdue = admin_client.get("/admin/invoicing/invoice/?currency=USD&ageing=overdue")
    assert overdue.status_code == 200
    assert overdue.context["cl"].result_count == 3
    assert admin_client.get("/admin/invoicing/invoice/?ageing=nonsense").status_code == 302
    assert 'src="/static/backoffice/vendor/chart-4.6.1.umd.min.js"' in html


def test_staff_need_to_log_in(db):
    assert Client().get("/admin/").status_code == 302


def test_the_customer_page_tells_its_story(book, admin_client):
    """Acme: invoiced 100 + 50 + 80 = 230.00 (issued; the void is not), paid 10 + 80 =
    90.00, owes 100 + 40 = 140.00 of which 40.00 overdue; a staff note joins the timeline."""
    acme, _ = book
    url = f"/admin/customers/customer/{acme.pk}/change/"

    added = admin_client.post(f"/admin/customers/customer/{acme.pk}/note/", {"body": "Called Ada"})
    page = admin_client.get(url).content.decode()

    assert added.status_code == 302
    figures = {label: value for label, value, _ in admin_client.get(url).context["story_balance"]}
    assert figures == {
        "Invoiced": "230.00 USD",
        "Paid by card": "90.00 USD",
        "Owed": "140.00 USD",
        "Overdue": "40.00 USD",
    }
    assert "Called Ada" in page and 'id="story-invoices"' in page
    assert page.index('id="customer-story"') < page.index('id="customer_form"')
