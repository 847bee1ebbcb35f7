"""Invoices voided before `payment_status=voided` existed kept `pending`: the data
migration (invoicing 0004) gives them `voided`, and leaves every other invoice alone."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    return executor.migrate(targets).apps


@pytest.mark.django_db(transaction=True)
def test_invoices_voided_before_keep_no_pending_payment():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    old = _migrate([("invoicing", "0003_daily_charge_limit")])
    try:
        Customer = old.get_model("customers", "Customer")
        Invoice = old.get_model("invoicing", "Invoice")
        now = timezone.now()
        customer = Customer.objects.create(external_id=f"voided-{uuid.uuid4()}", name="Old")

        def invoice(number: str, status: str, payment_status: str):
            return Invoice.objects.create(
                customer=customer,
                number=number,
                period_start=now - timedelta(days=30),
                period_end=now,
                currency="USD",
                subtotal_amount_cents=1000,
                total_amount_cents=1000,
                status=status,
                payment_status=payment_status,
            )

        voided_pending = invoice(f"V-{uuid.uuid4()}", "voided", "pending")
        voided_failed = invoice(f"V-{uuid.uuid4()}", "voided", "failed")
        voided_paid = invoice(f"V-{uuid.uuid4()}", "voided", "succeeded")
        open_one = invoice(f"O-{uuid.uuid4()}", "finalized", "pending")
    finally:
        new = _migrate(latest)

    statuses = dict(
        new.get_model("invoicing", "Invoice").objects.values_list("pk", "payment_status")
    )
    assert statuses[voided_pending.pk] == "voided"
    assert statuses[voided_failed.pk] == "voided"
    assert statuses[voided_paid.pk] == "succeeded"
    assert statuses[open_one.pk] == "pending"
