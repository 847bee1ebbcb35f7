"""Usage forwarding left waiting in the outbox (before it had a table of its own) becomes
a forwarding run when the database migrates forward."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    return executor.migrate(targets).apps


@pytest.mark.django_db(transaction=True)
def test_pending_outbox_forwarding_becomes_one_pending_run():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    old = _migrate([("usage", "0002_usage_forwarding_run")])
    try:
        OutboxMessage = old.get_model("sync", "OutboxMessage")

        def old_message(status: str):
            return OutboxMessage.objects.create(
                provider="lago",
                action="usage.forward",
                object_type="billing.usagerecord",
                object_id="lago-forwarding",
                status=status,
            )

        pending, running, failed = (old_message(s) for s in ("pending", "processing", "failed"))
        unrelated = OutboxMessage.objects.create(
            provider="lago", action="customer.sync", object_type="customers.customer", object_id="1"
        )
    finally:
        _migrate(latest)

    from billing.sync.models import OutboxMessage as Message
    from billing.usage.models import UsageForwardingRun

    run = UsageForwardingRun.objects.get()
    assert run.status == "pending" and run.attempts == 0
    statuses = dict(Message.objects.values_list("pk", "status"))
    assert statuses[pending.pk] == "superseded"
    # A worker of the old code holds this one; a failed one is history for staff.
    assert statuses[running.pk] == "processing"
    assert statuses[failed.pk] == "failed"
    assert statuses[unrelated.pk] == "pending"


@pytest.mark.django_db(transaction=True)
def test_no_forwarding_waiting_means_no_run():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    _migrate([("usage", "0002_usage_forwarding_run")])
    _migrate(latest)

    from billing.usage.models import UsageForwardingRun

    assert not UsageForwardingRun.objects.exists()
