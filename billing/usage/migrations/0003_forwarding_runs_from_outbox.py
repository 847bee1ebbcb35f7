from django.db import migrations
from django.utils import timezone

# The outbox action usage forwarding used before it had a table of its own.
OLD_ACTION = "usage.forward"


def outbox_to_runs(apps, schema_editor):
    """Waiting forwarding work in the outbox becomes one pending forwarding run.

    A pending outbox row is superseded (the run does its work). A processing one is left to
    the old worker that holds it, but still earns a run: if that worker dies or retries, the
    new code has no outbox handler for it any more, and the records it was sending must not
    wait for the next recording. The run is published by the sweep within a minute.
    """
    OutboxMessage = apps.get_model("sync", "OutboxMessage")
    UsageForwardingRun = apps.get_model("usage", "UsageForwardingRun")
    old = OutboxMessage.objects.filter(action=OLD_ACTION)
    if not old.filter(status__in=["pending", "processing"]).exists():
        return
    now = timezone.now()
    if not UsageForwardingRun.objects.filter(status="pending").exists():
        UsageForwardingRun.objects.create(status="pending", available_at=now, created_at=now)
    old.filter(status="pending").update(status="superseded", processed_at=now, locked_at=None)


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0002_usage_forwarding_run"),
        ("sync", "0001_initial"),
    ]

    operations = [
        # Backwards there is nothing to undo: the superseded rows' work is the run's, and
        # the old code forwards whatever records are still pending on its next recording.
        migrations.RunPython(outbox_to_runs, migrations.RunPython.noop),
    ]
