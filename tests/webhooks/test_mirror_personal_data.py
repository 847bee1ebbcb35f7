"""dj-stripe's mirror keeps no personal data in clear (hardening: reliability, item 6):
Stripe holds a customer's name, e-mail and address, our own columns hold them (the
address encrypted), and no djstripe_* row repeats any of them."""

import pytest
import requests
from django.db import connection
from djstripe.models import Customer as StripeMirror
from djstripe.models import PaymentMethod as StripePaymentMethodMirror

from billing.providers import stripe
from customers import services
from tests.factories import CustomerFactory
from tests.helpers.outbox import drain_outbox
from tests.helpers.providers import STRIPE_TEST_KEY, stripe_get

pytestmark = pytest.mark.django_db

PERSON = {
    "name": "Alice Liddell",
    "email": "alice.liddell@example.com",
    "address_line1": "7 Rabbit Hole Lane",
    "city": "Wonderland-on-Thames",
    "zipcode": "OX1 9ZZ",
    "state": "Looking-Glass Shire",
}


def every_djstripe_row() -> str:
    """Every row of every dj-stripe table, each column included, as text."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'djstripe%%'")
        tables = [row[0] for row in cursor.fetchall()]
        rows = []
        for table in tables:
            cursor.execute(
                f"SELECT coalesce(string_agg(row_to_json(t)::text, ' '), '') FROM \"{table}\" t"
            )
            rows.append(cursor.fetchone()[0])
    assert "djstripe_customer" in tables and "djstripe_paymentmethod" in tables
    return "\n".join(rows)


def assert_no_person_in(text: str) -> None:
    for field, value in PERSON.items():
        assert value not in text, f"the {field} {value!r} is stored in clear"
    assert "alice" not in text.lower()


def test_a_mirrored_customer_and_card_keep_no_name_email_or_address(stripe_enabled):
    customer = CustomerFactory(external_id="wonderland", country="GB", **PERSON)
    drain_outbox()  # the Stripe sync, which mirrors the customer
    customer.refresh_from_db()
    # A card whose billing details name the same person, mirrored as a webhook would.
    card = requests.post(
        f"{stripe_enabled}/v1/payment_methods",
        data={
            "type": "card",
            "card[number]": "4242424242424242",
            "card[exp_month]": "12",
            "card[exp_year]": "2030",
            "card[cvc]": "123",
            "billing_details[name]": PERSON["name"],
            "billing_details[email]": PERSON["email"],
            "billing_details[phone]": "+44 1865 000000",
            "billing_details[address][line1]": PERSON["address_line1"],
            "billing_details[address][city]": PERSON["city"],
            "billing_details[address][country]": "GB",
        },
        headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}"},
        timeout=5,
    ).json()
    stripe.mirror_data(card)

    # Mirrored: what staff and reconciliation use is there...
    mirror = StripeMirror.objects.get(id=customer.stripe_customer_id)
    assert mirror.stripe_data["metadata"]["external_id"] == "wonderland"
    assert mirror.stripe_data["address"] == {"country": "GB"}
    method = StripePaymentMethodMirror.objects.get(id=card["id"])
    assert {k: method.stripe_data["card"][k] for k in ("brand", "last4", "exp_year")} == {
        "brand": "visa",
        "last4": "4242",
        "exp_year": 2030,
    }
    # ... and no column of any dj-stripe row holds the person.
    rows = every_djstripe_row()
    assert_no_person_in(rows)
    assert "+44 1865" not in rows and "4242424242424242" not in rows
    # Stripe itself has them (receipts, tax, card checks need them); so do we.
    remote = stripe_get(stripe_enabled, f"customers/{customer.stripe_customer_id}")
    assert (remote["name"], remote["email"]) == (PERSON["name"], PERSON["email"])

    # A later change is mirrored the same way.
    services.customer_update(customer=customer, name="Alice P. Liddell")
    drain_outbox()
    assert "Liddell" not in every_djstripe_row()


def test_the_scrub_reaches_nested_objects():
    """A PaymentIntent carries its failed card (with billing details) and its charges."""
    person = {
        "name": "Alice Liddell",
        "email": "alice@example.com",
        "phone": "+44 1865 000000",
        "address": {"line1": "7 Rabbit Hole Lane", "city": "Oxford", "country": "GB"},
    }
    intent = {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 4900,
        "client_secret": "pi_1_secret_x",
        "receipt_email": "alice@example.com",
        "shipping": {**person, "carrier": None},
        "last_payment_error": {
            "code": "card_declined",
            "payment_method": {"id": "pm_1", "billing_details": person, "card": {"last4": "1"}},
        },
        "charges": {"data": [{"id": "ch_1", "billing_details": person, "receipt_url": "u"}]},
    }

    scrubbed = stripe.scrub_personal_data(intent)

    text = str(scrubbed)
    assert "Alice" not in text and "alice@" not in text and "Rabbit" not in text
    assert "+44" not in text and "secret" not in text and "receipt_url" not in text
    assert scrubbed["amount"] == 4900 and scrubbed["last_payment_error"]["code"] == "card_declined"
    assert scrubbed["last_payment_error"]["payment_method"]["billing_details"] == {
        "address": {"country": "GB"}
    }
    assert scrubbed["shipping"] == {"address": {"country": "GB"}, "carrier": None}


def test_rows_mirrored_before_the_scrub_are_scrubbed_by_the_migration(stripe_enabled):
    from importlib import import_module

    from django.apps import apps

    customer = CustomerFactory(external_id="wonderland", country="GB", **PERSON)
    drain_outbox()
    customer.refresh_from_db()
    # As an older release left it: the whole object, in clear (written past the scrub).
    remote = stripe_get(stripe_enabled, f"customers/{customer.stripe_customer_id}")
    StripeMirror.objects.filter(id=remote["id"]).update(stripe_data=remote, email=PERSON["email"])
    assert PERSON["city"] in every_djstripe_row()

    migration = import_module("billing.sync.migrations.0004_scrub_djstripe_personal_data")
    migration.scrub_existing_rows(apps, None)

    assert_no_person_in(every_djstripe_row())
    assert StripeMirror.objects.get(id=remote["id"]).stripe_data["address"] == {"country": "GB"}
