"""Running the sync outbox in the test's own thread, as a worker would."""

from django.utils import timezone

from billing.sync.models import OutboxMessage
from billing.sync.outbox import outbox_process


def run_outbox() -> list[str]:
    """Process every due outbox message now, as a worker would."""
    due = OutboxMessage.objects.filter(status="pending").order_by("id").values_list("id", flat=True)
    return [outbox_process(message_id=pk) for pk in list(due)]


def drain_outbox(rounds: int = 5) -> None:
    """Run the outbox until nothing is pending, not waiting for backoff delays."""
    for _ in range(rounds):
        pending = OutboxMessage.objects.filter(status="pending")
        if not pending.exists():
            break
        pending.update(available_at=timezone.now())
        run_outbox()
    if not OutboxMessage.objects.exclude(status__in=["done", "superseded"]).exists():
        return
    failed = list(
        OutboxMessage.objects.exclude(status__in=["done", "superseded"]).values(
            "action", "status", "last_error"
        )
    )
    raise AssertionError(f"outbox did not drain: {failed}")
