"""A customer's currency is frozen once something is priced in it (hardening: money
safeguards, item 4)."""

import pytest

from customers.models import Customer
from tests.factories import CustomerFactory, InvoiceFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def patch_currency(client, customer: Customer, currency: str):
    return client.patch(
        f"/api/v1/customers/{customer.external_id}/", {"currency": currency}, format="json"
    )


def test_currency_changes_while_nothing_is_priced_in_it(client):
    customer = CustomerFactory(currency="USD")
    response = patch_currency(client, customer, "EUR")
    assert response.status_code == 200
    assert Customer.objects.get(pk=customer.pk).currency == "EUR"


def test_currency_is_locked_by_a_subscription(client):
    subscription = SubscriptionFactory()
    customer = subscription.customer
    response = patch_currency(client, customer, "EUR")
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "currency_locked"
    assert Customer.objects.get(pk=customer.pk).currency == "USD"
    # Other fields, and the same currency again, still update.
    same = client.patch(
        f"/api/v1/customers/{customer.external_id}/",
        {"currency": "USD", "name": "Renamed"},
        format="json",
    )
    assert same.status_code == 200
    assert Customer.objects.get(pk=customer.pk).name == "Renamed"


def test_currency_is_locked_by_an_invoice_without_subscription(client):
    invoice = InvoiceFactory(subscription=None)
    response = patch_currency(client, invoice.customer, "EUR")
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "currency_locked"
    assert Customer.objects.get(pk=invoice.customer.pk).currency == "USD"
