"""Actions on an object's own page: a button where the user may act and the state allows
it, a confirmation saying what will happen, nothing done before it is confirmed, and the
list's own permission checks."""

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from billing.invoicing.billing_run import billing_run
from billing.invoicing.models import Invoice
from core.iso import format_money
from subscriptions.models import Subscription
from tests.factories import PlanFactory, SubscriptionFactory, WebhookEventFactory

pytestmark = pytest.mark.django_db


def test_terminate_from_the_subscription_page_asks_first(admin_client, settings):
    settings.INVOICE_GRACE_MINUTES = 0  # the final invoice at once, for the comparison
    subscription = SubscriptionFactory(external_id="sub-1")
    page = admin_client.get(f"/admin/subscriptions/subscription/{subscription.pk}/change/")
    url = f"/admin/subscriptions/subscription/{subscription.pk}/do/terminate_now/"
    assert url in page.content.decode()

    asked = admin_client.get(url)

    said = asked.content.decode()
    assert "billed on a final invoice at once" in said and "Billed now, as of this minute" in said
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE  # nothing before confirming
    done = admin_client.post(url, {"apply": "1"})
    assert done.status_code == 302 and done["Location"].endswith(
        f"/admin/subscriptions/subscription/{subscription.pk}/change/"
    )
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.TERMINATED
    # The amount said before is the amount the final invoice bills.
    billing_run()
    final = Invoice.objects.get(subscription=subscription)
    assert f"total {format_money(final.total_amount_cents, 'USD')} (tax included" in said


def test_change_plan_from_the_page_goes_through_its_form(admin_client):
    subscription = SubscriptionFactory(external_id="sub-2")
    bigger = PlanFactory(code="bigger", amount_cents=9900)
    url = f"/admin/subscriptions/subscription/{subscription.pk}/do/change_plan/"

    form = admin_client.get(url).content.decode()
    admin_client.post(url, {"plan": bigger.pk, "apply": "1"})

    assert 'name="plan"' in form
    subscription.refresh_from_db()
    assert subscription.plan_id == bigger.pk


def test_a_user_without_the_permission_gets_no_button_and_a_403(db):
    subscription = SubscriptionFactory(external_id="sub-3")
    event = WebhookEventFactory(failed=True)
    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_subscription", "view_webhookevent"])
    )
    browser = Client()
    browser.force_login(user)

    page = browser.get(f"/admin/subscriptions/subscription/{subscription.pk}/change/")
    assert "/do/terminate_now/" not in page.content.decode()
    url = f"/admin/subscriptions/subscription/{subscription.pk}/do/terminate_now/"
    assert browser.post(url, {"apply": "1"}).status_code == 403
    assert browser.get(f"/admin/webhooks/webhookevent/{event.pk}/do/replay/").status_code == 403
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE


def test_replay_from_the_event_page(admin_client):
    event = WebhookEventFactory(failed=True)
    url = f"/admin/webhooks/webhookevent/{event.pk}/do/replay/"

    assert (
        url in admin_client.get(f"/admin/webhooks/webhookevent/{event.pk}/change/").content.decode()
    )
    assert "processed again by its handler" in admin_client.get(url).content.decode()
    assert admin_client.post(url, {"apply": "1"}).status_code == 302
    event.refresh_from_db()
    assert event.status != "failed"


def test_the_subscription_page_shows_this_period_so_far_and_its_invoices(admin_client):
    subscription = SubscriptionFactory(external_id="sub-4", plan=PlanFactory(amount_cents=4900))

    page = admin_client.get(f"/admin/subscriptions/subscription/{subscription.pk}/change/")

    body = page.content.decode()
    assert page.status_code == 200
    assert 'id="subscription-preview"' in body and "Total if the period ended now" in body
    assert "No invoice yet." in body
