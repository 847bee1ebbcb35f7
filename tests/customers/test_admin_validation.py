"""The admin refuses what the API refuses, in the same words, and saves through the same
services (hardening: money safeguards, item 5). A refusal is a form error: nothing saved,
nothing queued for Stripe, never a server error."""

import pytest

from billing.sync.models import OutboxMessage
from customers import admin as customers_admin
from customers import services
from customers.models import Customer
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

ADD = "/admin/customers/customer/add/"


def customer_form(**values: str) -> dict[str, str]:
    """The admin's customer form as a browser posts it."""
    return {
        "external_id": "acme",
        "name": "Acme",
        "email": "billing@acme.test",
        "currency": "USD",
        "metadata": "{}",
        "address_line1": "",
        "city": "",
        "zipcode": "",
        "state": "",
        "country": "US",
        "tax_id": "",
        "tax_rate": "0",
        # The payment methods inline's (empty) formset.
        "payment_methods-TOTAL_FORMS": "0",
        "payment_methods-INITIAL_FORMS": "0",
        **values,
    }


def form_errors(response) -> list[str]:
    """Every error the re-rendered admin form shows, field and non-field."""
    assert response.status_code == 200, response.status_code
    form = response.context["adminform"].form
    return [message for messages in form.errors.values() for message in messages]


def test_add_with_unknown_currency_and_country_is_refused_as_the_api_refuses_it(
    admin_client, client, stripe_enabled
):
    response = admin_client.post(ADD, customer_form(currency="XYZ", country="QQ"))

    errors = form_errors(response)
    assert "'XYZ' is not an ISO 4217 currency code." in errors
    assert "'QQ' is not an ISO 3166-1 alpha-2 code." in errors
    assert not Customer.objects.exists()
    assert not OutboxMessage.objects.exists()  # nothing on its way to Stripe
    # The API's words for the same values.
    api = client.post(
        "/api/v1/customers/",
        {"external_id": "acme", "currency": "XYZ", "country": "QQ"},
        format="json",
    )
    assert api.status_code == 400
    assert {e["detail"] for e in api.json()["errors"]} == set(errors)


@pytest.mark.parametrize(
    "values, expected",
    [
        ({"external_id": "victim?x"}, "1 to 255 characters: letters, digits"),
        (
            {"metadata": "{" + ", ".join(f'"k{n}": 1' for n in range(51)) + "}"},
            "At most 50 keys.",
        ),
    ],
    ids=["external_id outside the alphabet", "51 metadata keys"],
)
def test_add_refuses_every_other_value_the_api_refuses(admin_client, values, expected):
    response = admin_client.post(ADD, customer_form(**values))

    assert any(expected in error for error in form_errors(response))
    assert not Customer.objects.exists()


def test_add_saves_through_the_service_and_queues_the_stripe_sync(
    admin_client, stripe_enabled, monkeypatch
):
    calls = []
    real_create = services.customer_create
    monkeypatch.setattr(
        services, "customer_create", lambda **kw: calls.append(kw) or real_create(**kw)
    )

    response = admin_client.post(ADD, customer_form(currency="eur", country="fr"))

    assert response.status_code == 302, form_errors(response)
    customer = Customer.objects.get(external_id="acme")
    # Upper-cased, as the API stores codes.
    assert (customer.currency, customer.country) == ("EUR", "FR")
    assert calls and calls[0]["external_id"] == "acme"
    # The outbox row the API's create leaves: the sync to Stripe is on its way.
    assert OutboxMessage.objects.filter(
        provider="stripe", action="customer.sync", object_id=str(customer.pk)
    ).exists()


def test_currency_change_under_a_subscription_is_refused_in_the_api_words(admin_client):
    customer = SubscriptionFactory().customer
    change = f"/admin/customers/customer/{customer.pk}/change/"

    response = admin_client.post(
        change, customer_form(external_id=customer.external_id, currency="EUR")
    )

    errors = form_errors(response)
    assert any("its currency cannot change" in error for error in errors), errors
    assert Customer.objects.get(pk=customer.pk).currency == "USD"
    # The same currency, with another change, still saves.
    response = admin_client.post(change, customer_form(currency="USD", name="Renamed"))
    assert response.status_code == 302
    assert Customer.objects.get(pk=customer.pk).name == "Renamed"


def test_a_refusal_that_only_the_save_sees_is_a_message_not_a_server_error(
    admin_client, monkeypatch
):
    """The state changed between the form's check and the service's (a subscription made
    meanwhile): the service's Conflict rolls the save back and is reported."""
    customer = SubscriptionFactory().customer
    monkeypatch.setattr(customers_admin.CustomerForm, "check_with_services", lambda *a: None)

    response = admin_client.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        customer_form(currency="EUR", name="Renamed"),
        follow=True,
    )

    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("Not saved:" in m and "currency cannot change" in m for m in shown), shown
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.currency, stored.name) == ("USD", "")
