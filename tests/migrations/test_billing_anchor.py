"""Periods used to count from started_at: subscriptions 0008 gives every started
subscription a billing_anchor_at equal to it, and leaves pending ones without."""

import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    return executor.migrate(targets).apps


@pytest.mark.django_db(transaction=True)
def test_started_subscriptions_keep_their_periods():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    old = _migrate([("subscriptions", "0007_subscription_permissions")])
    started = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
    try:
        Customer = old.get_model("customers", "Customer")
        Plan = old.get_model("subscriptions", "Plan")
        Subscription = old.get_model("subscriptions", "Subscription")
        customer = Customer.objects.create(external_id=f"anchor-{uuid.uuid4()}", name="Old")
        plan = Plan.objects.create(
            code=f"anchor-{uuid.uuid4()}",
            name="Old",
            interval="monthly",
            currency="USD",
            amount_cents=4900,
        )

        def subscription(status, started_at):
            return Subscription.objects.create(
                external_id=f"anchor-{uuid.uuid4()}",
                customer=customer,
                plan=plan,
                status=status,
                start_at=started,
                started_at=started_at,
                current_period_start=started_at,
                current_period_end=started_at and datetime(2026, 4, 1, tzinfo=UTC),
            )

        active = subscription("active", started)
        pending = subscription("pending", None)
    finally:
        new = _migrate(latest)

    anchors = dict(
        new.get_model("subscriptions", "Subscription").objects.values_list(
            "pk", "billing_anchor_at"
        )
    )
    assert anchors[active.pk] == started
    assert anchors[pending.pk] is None
