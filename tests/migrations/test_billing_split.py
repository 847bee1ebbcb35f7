"""A database created before billing/ was split into apps migrates forward intact.

(And so does the state that used to be stored as sentences.)

The test database is taken back to the last pre-split migration (billing 0006, with the
apps that did not exist then unapplied), filled through the historical models as the old
code wrote it, then migrated forward again: the rows are read back through the new apps,
the audit triggers still record changes, and content types and outbox rows follow."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

SPLIT_APPS = ("sync", "usage", "invoicing", "payments")


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    return executor.migrate(targets).apps


def _before_split(executor: MigrationExecutor) -> list[tuple[str, str | None]]:
    targets = [("billing", "0006_invoice_immutability")]
    targets += [(app, None) for app in SPLIT_APPS]
    return targets


@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_split_migrates_forward_with_its_rows():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    old = _migrate(_before_split(executor))
    try:
        Customer = old.get_model("customers", "Customer")
        Invoice = old.get_model("billing", "Invoice")
        InvoiceLine = old.get_model("billing", "InvoiceLine")
        PaymentAttempt = old.get_model("billing", "PaymentAttempt")
        OutboxMessage = old.get_model("billing", "OutboxMessage")
        UsageTransaction = old.get_model("billing", "UsageTransaction")
        ContentType = old.get_model("contenttypes", "ContentType")
        ContentType.objects.get_or_create(app_label="billing", model="invoice")

        now = timezone.now()
        customer = Customer.objects.create(external_id=f"pre-split-{uuid.uuid4()}", name="Old")
        invoice = Invoice.objects.create(
            customer=customer,
            period_start=now - timedelta(days=30),
            period_end=now,
            currency="USD",
            subtotal_amount_cents=1000,
            total_amount_cents=1000,
            payment_blocked_reason="The customer has no default payment method.",
        )
        InvoiceLine.objects.create(
            invoice=invoice,
            position=1,
            fee_type="subscription",
            description="Old fee",
            units=1,
            unit_amount=10,
            amount_cents=1000,
            from_datetime=invoice.period_start,
            to_datetime=invoice.period_end,
        )
        attempt = PaymentAttempt.objects.create(
            invoice=invoice,
            number=1,
            status="failed",
            amount_cents=1000,
            currency="USD",
            idempotency_key=f"invoice:{invoice.pk}:pay:1",
            stripe_status="needs_review",
        )
        message = OutboxMessage.objects.create(
            provider="stripe",
            action="invoice.collect",
            object_type="billing.invoice",
            object_id=str(invoice.pk),
            status="done",
        )
        UsageTransaction.objects.create(
            transaction_id=f"tx-{uuid.uuid4()}", content_hash="x", timestamp=now
        )
    finally:
        new = _migrate(latest)

    from billing.invoicing.models import Invoice as NewInvoice
    from billing.payments.models import PaymentAttempt as NewAttempt
    from billing.sync.models import OutboxMessage as NewMessage

    moved = NewInvoice.objects.get(pk=invoice.pk)
    assert moved.total_amount_cents == 1000
    assert [line.description for line in moved.lines.all()] == ["Old fee"]
    # State that was prose is data now: the sentence became its code, the review flag
    # left the field that mirrors Stripe's status.
    assert moved.payment_blocked_reason == "no_default_card"
    moved_attempt = NewAttempt.objects.get(pk=attempt.pk)
    assert moved_attempt.invoice_id == invoice.pk
    assert (moved_attempt.needs_review, moved_attempt.stripe_status) == (True, "")
    assert NewMessage.objects.get(pk=message.pk).object_type == "invoicing.invoice"
    # The audit triggers were re-installed under the new app: a change is recorded.
    events = moved.events.count()
    moved.reconciliation_note = "checked after the split"
    moved.save()
    assert moved.events.count() == events + 1
    content_type = new.get_model("contenttypes", "ContentType")
    assert content_type.objects.filter(app_label="invoicing", model="invoice").exists()
    assert not content_type.objects.filter(app_label="billing", model="invoice").exists()
