"""Admin actions and forms behind specific permissions: a staff user who may only view is
refused every action (the service is never called, nothing changes) and every change form;
a user given the action's own permission runs it."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from billing.invoicing import engines
from billing.payments import collection
from billing.sync.outbox import OUTBOX
from billing.usage.forwarding import FORWARDING
from billing.usage.models import UsageForwardingRun
from core.models import ApiKey
from customers import services as customer_services
from subscriptions import services as subscription_services
from tests.factories import (
    CustomerFactory,
    InvoiceFactory,
    OutboxMessageFactory,
    PaymentMethodFactory,
    SubscriptionFactory,
    WebhookEventFactory,
)
from tests.helpers.catalog import Catalog
from webhooks import admin as webhooks_admin

pytestmark = pytest.mark.django_db


def browser(*perms: str, username: str = "clerk") -> Client:
    """A staff user with every view permission and the given "app.codename" ones."""
    user = User.objects.create_user(username, password="x", is_staff=True)
    granted = Permission.objects.filter(codename__startswith="view_")
    for perm in perms:
        app_label, codename = perm.split(".")
        granted |= Permission.objects.filter(content_type__app_label=app_label, codename=codename)
    user.user_permissions.set(granted)
    client = Client()
    client.force_login(user)
    return client


@dataclass
class Case:
    url: str
    action: str
    row: Callable[[Catalog], Any]
    target: tuple[Any, str]  # the service the action calls, replaced by a recorder
    perm: str
    extra: Callable[[Catalog], dict[str, str]] = lambda catalog: {}


def subscription(catalog: Catalog):
    return SubscriptionFactory(customer=catalog.acme, plan=catalog.pro)


CASES = {
    "cancel at period end": Case(
        "/admin/subscriptions/subscription/",
        "cancel_at_period_end_action",
        subscription,
        (subscription_services, "subscription_cancel"),
        "subscriptions.cancel_subscription",
    ),
    "terminate": Case(
        "/admin/subscriptions/subscription/",
        "terminate_now",
        subscription,
        (subscription_services, "subscription_cancel"),
        "subscriptions.cancel_subscription",
    ),
    "reactivate": Case(
        "/admin/subscriptions/subscription/",
        "reactivate",
        subscription,
        (subscription_services, "subscription_reactivate"),
        "subscriptions.reactivate_subscription",
    ),
    "change plan": Case(
        "/admin/subscriptions/subscription/",
        "change_plan",
        subscription,
        (subscription_services, "subscription_update"),
        "subscriptions.change_subscription_plan",
        extra=lambda catalog: {"plan": str(catalog.business.pk)},
    ),
    "set default card": Case(
        "/admin/customers/paymentmethod/",
        "set_default",
        lambda catalog: PaymentMethodFactory(customer=catalog.acme),
        (customer_services, "payment_method_set_default"),
        "customers.manage_payment_method",
    ),
    "remove card": Case(
        "/admin/customers/paymentmethod/",
        "remove",
        lambda catalog: PaymentMethodFactory(customer=catalog.acme),
        (customer_services, "payment_method_remove"),
        "customers.manage_payment_method",
    ),
    "replay webhook": Case(
        "/admin/webhooks/webhookevent/",
        "replay",
        lambda catalog: WebhookEventFactory(failed=True),
        (webhooks_admin, "webhook_event_replay"),
        "webhooks.replay_webhookevent",
    ),
    "retry outbox": Case(
        "/admin/sync/outboxmessage/",
        "retry",
        lambda catalog: OutboxMessageFactory(status="failed"),
        (OUTBOX, "retry"),
        "sync.retry_outboxmessage",
    ),
    "retry usage forwarding": Case(
        "/admin/usage/usageforwardingrun/",
        "retry",
        lambda catalog: UsageForwardingRun.objects.create(status="failed"),
        (FORWARDING, "retry"),
        "usage.retry_usageforwardingrun",
    ),
    "finalize invoice": Case(
        "/admin/invoicing/invoice/",
        "finalize",
        lambda catalog: InvoiceFactory(subscription__customer=catalog.acme),
        (engines, "invoice_finalize"),
        "invoicing.change_invoice",
    ),
    "void invoice": Case(
        "/admin/invoicing/invoice/",
        "void",
        lambda catalog: InvoiceFactory(subscription__customer=catalog.acme),
        (engines, "invoice_void"),
        "invoicing.void_invoice",
    ),
    "retry invoice payment": Case(
        "/admin/invoicing/invoice/",
        "retry_payment",
        lambda catalog: InvoiceFactory(subscription__customer=catalog.acme),
        (collection, "invoice_pay"),
        "invoicing.change_invoice",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_action_needs_its_own_permission(case: Case, catalog, monkeypatch):
    row = case.row(catalog)
    calls: list[Any] = []

    def recorder(*args, **kwargs):
        calls.append(args or kwargs)
        return (args or tuple(kwargs.values()))[0]

    monkeypatch.setattr(*case.target, recorder)
    data = {
        "action": case.action,
        "_selected_action": [str(row.pk)],
        "apply": "1",
        **case.extra(catalog),
    }

    viewer = browser()
    assert viewer.get(case.url).status_code == 200  # may see the list…
    listing = viewer.get(case.url).content.decode()
    assert f'value="{case.action}"' not in listing  # …without the action on offer
    refused = viewer.post(case.url, data, follow=True)
    assert refused.status_code in (200, 403)
    assert calls == []  # refused before the service (and so before any provider)

    allowed = browser(case.perm, username="operator").post(case.url, data, follow=True)
    assert allowed.status_code == 200
    assert len(calls) == 1


def test_revoking_an_api_key_needs_revoke_apikey():
    key, _ = ApiKey.generate(name="svc")
    data = {"action": "revoke", "_selected_action": [str(key.pk)]}

    browser("core.change_apikey").post("/admin/core/apikey/", data)
    key.refresh_from_db()
    assert key.revoked_at is None

    browser("core.revoke_apikey", username="operator").post("/admin/core/apikey/", data)
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_change_forms_refuse_a_view_only_user_and_read_only_stays_fixed(catalog):
    key, _ = ApiKey.generate(name="reports", read_only=True)
    customer = CustomerFactory(name="Ada")
    viewer = browser()

    posts = {
        f"/admin/core/apikey/{key.pk}/change/": {"name": "reports"},
        f"/admin/customers/customer/{customer.pk}/change/": {"name": "Eve"},
        f"/admin/subscriptions/plan/{catalog.starter.pk}/change/": {"name": "Free"},
        "/admin/core/apikey/add/": {"name": "sneaky"},
    }
    for url, data in posts.items():
        assert viewer.get(url.replace("/add/", "/")).status_code == 200, url
        assert viewer.post(url, data).status_code == 403, url
    customer.refresh_from_db()
    catalog.starter.refresh_from_db()
    assert customer.name == "Ada" and catalog.starter.name != "Free"
    assert not ApiKey.objects.filter(name="sneaky").exists()

    # Even with change_apikey, a read-only key stays read-only: the field is not editable.
    editor = browser("core.change_apikey", username="editor")
    page = editor.get(f"/admin/core/apikey/{key.pk}/change/").content.decode()
    assert 'name="read_only"' not in page
    editor.post(f"/admin/core/apikey/{key.pk}/change/", {"name": "reports"})
    key.refresh_from_db()
    assert key.read_only is True


def test_the_invoice_pdf_needs_an_invoice_permission(catalog):
    invoice = InvoiceFactory(subscription__customer=catalog.acme)
    url = f"/admin/invoicing/invoice/{invoice.pk}/pdf/"
    nobody = User.objects.create_user("temp", password="x", is_staff=True)
    client = Client()
    client.force_login(nobody)

    assert client.get(url).status_code == 403
    assert browser().get(url).status_code == 200
