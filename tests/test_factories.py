"""The factories build what the services build, and what the database accepts: a test
set up with them starts from a state production can reach."""

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from billing.invoicing.models import Invoice, InvoiceLine
from billing.invoicing.services import invoice_generate_for_period
from billing.sync.models import OutboxMessage
from customers.models import PaymentMethod
from subscriptions import services as subscription_services
from subscriptions.models import SubscriptionPeriod
from tests.factories import (
    ChargeFactory,
    CustomerFactory,
    InvoiceFactory,
    OutboxMessageFactory,
    PaymentAttemptFactory,
    PaymentMethodFactory,
    PlanFactory,
    SubscriptionFactory,
    WebhookEventFactory,
)
from tests.helpers.invoicing import OCT_1, close_periods

pytestmark = pytest.mark.django_db

SUBSCRIPTION_STATE = (
    "status",
    "billing_time",
    "start_at",
    "started_at",
    "trial_ends_at",
    "current_period_start",
    "current_period_end",
    "overrides",
)
LINE_FIELDS = (
    "position",
    "fee_type",
    "description",
    "plan_code",
    "metric_id",
    "charge_model",
    "properties",
    "units",
    "unit_amount",
    "amount_cents",
    "from_datetime",
    "to_datetime",
)


def state(subscription) -> dict:
    phases = subscription.phases.values_list("plan_id", "overrides", "started_at", "ended_at")
    return {
        **{name: getattr(subscription, name) for name in SUBSCRIPTION_STATE},
        "phases": list(phases),
    }


@pytest.mark.parametrize("trial_days", [0, 14])
@pytest.mark.parametrize("billing_time", ["calendar", "anniversary"])
def test_a_subscription_is_what_subscription_create_makes(catalog, trial_days, billing_time):
    plan = PlanFactory(trial_days=trial_days)
    start = OCT_1.replace(day=16, hour=9)

    built = SubscriptionFactory(
        customer=catalog.acme, plan=plan, billing_time=billing_time, start_at=start
    )
    with time_machine.travel(start, tick=False):  # created on its start, as the factory's
        created = subscription_services.subscription_create(
            external_id="by-the-service",
            customer=catalog.acme,
            plan=plan,
            billing_time=billing_time,
            start_at=start,
        )

    assert state(built) == state(created)
    assert built.phases.get().reason == created.phases.get().reason == "created"


def test_a_pending_subscription_has_no_period_and_no_phase():
    pending = SubscriptionFactory(pending=True)

    assert pending.status == "pending" and pending.current_period_end is None
    assert not pending.phases.exists()


def test_a_subscription_refuses_a_plan_in_another_currency():
    with pytest.raises(ValueError, match="EUR"):
        SubscriptionFactory(
            customer=CustomerFactory(currency="USD"), plan=PlanFactory(currency="EUR")
        )


def test_a_charge_refuses_properties_the_api_would_refuse():
    with pytest.raises(ValidationError):
        ChargeFactory(charge_model="graduated", properties={"graduated_ranges": []})


def test_an_invoice_has_the_lines_and_totals_generation_gives(catalog):
    catalog.acme.tax_rate = "20.00"
    catalog.acme.save()
    SubscriptionFactory(customer=catalog.acme, plan=catalog.pro, start_at=OCT_1)
    close_periods()
    generated, _ = invoice_generate_for_period(period=SubscriptionPeriod.objects.get())

    built = InvoiceFactory(subscription__customer=catalog.acme, subscription__plan=catalog.pro)

    def content(invoice: Invoice) -> dict:
        return {
            "fields": [
                getattr(invoice, name)
                for name in (
                    "status",
                    "customer_id",
                    "period_start",
                    "period_end",
                    "currency",
                    "subtotal_amount_cents",
                    "tax_rate",
                    "taxes_amount_cents",
                    "total_amount_cents",
                    "engine",
                )
            ],
            "lines": list(invoice.lines.values_list(*LINE_FIELDS)),
        }

    generated.refresh_from_db()
    built.refresh_from_db()
    assert content(built) == content(generated)
    assert (built.subtotal_amount_cents, built.taxes_amount_cents) == (4900, 980)


def test_a_finalized_invoice_is_issued_with_its_lines_and_immutable(catalog):
    invoice = InvoiceFactory(
        subscription__customer=catalog.acme, subscription__plan=catalog.pro, finalized=True
    )

    invoice.refresh_from_db()
    assert invoice.status == "finalized" and invoice.number.startswith("TEST-")
    assert invoice.issued_at is not None
    assert invoice.lines.count() == 3
    assert invoice.total_amount_cents == invoice.subtotal_amount_cents == 4900
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(total_amount_cents=1, subtotal_amount_cents=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.create(
            **{
                **{f: getattr(invoice.lines.first(), f) for f in LINE_FIELDS},
                "invoice": invoice,
                "position": 4,
            }
        )


def test_an_invoice_without_lines_is_finalized_in_one_insert():
    invoice = InvoiceFactory(subscription=None, lines=[], finalized=True)

    assert invoice.events.count() == 1  # the audit trail saw one insert, no update
    assert (invoice.status, invoice.total_amount_cents, invoice.customer_id) == (
        "finalized",
        0,
        invoice.customer.pk,
    )


def test_an_invoice_refuses_a_customer_that_is_not_its_subscriptions():
    with pytest.raises(ValueError, match="subscription"):
        InvoiceFactory(customer=CustomerFactory())


def test_payment_attempts_number_themselves_per_invoice():
    first = PaymentAttemptFactory()
    second = PaymentAttemptFactory(invoice=first.invoice, processing=True)

    assert (first.number, second.number) == (1, 2)
    assert second.idempotency_key == f"invoice:{first.invoice.pk}:pay:2"
    assert first.amount_cents == first.invoice.total_amount_cents
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentAttemptFactory(invoice=first.invoice, processing=True)  # one in flight


def test_payment_methods_keep_one_default_per_customer():
    card = PaymentMethodFactory(default=True)
    PaymentMethodFactory(customer=card.customer, detached=True)

    assert sorted(PaymentMethod.objects.values_list("is_default", "status")) == [
        (False, "detached"),
        (True, "active"),
    ]
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentMethodFactory(customer=card.customer, default=True)


def test_outbox_messages_and_webhook_events_are_stored_as_their_services_store_them():
    message = OutboxMessageFactory()
    stripe = WebhookEventFactory(processed=True)
    lago_id = "00000000-0000-0000-0000-0000000000c1"
    lago = WebhookEventFactory(
        provider="lago",
        payload={
            "webhook_type": "customer.updated",
            "object_type": "customer",
            "customer": {
                "lago_id": lago_id,
                "external_id": "acme",
                "updated_at": "2026-10-01T00:00:00Z",
            },
        },
    )
    default_lago = WebhookEventFactory(provider="lago")

    assert OutboxMessage.objects.filter(pk=message.pk, status="pending").exists()
    assert (stripe.type, stripe.object_id, stripe.status) == (
        "customer.updated",
        "cus_test",
        "processed",
    )
    assert stripe.provider_created_at is not None
    assert (lago.type, lago.object_id, lago.provider_created_at) == (
        "customer.updated",
        lago_id,
        OCT_1,
    )
    assert default_lago.object_id  # a well-formed body: the intake finds its id
