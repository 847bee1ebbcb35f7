"""Running usage forwarding in the test's own thread, as a worker would."""

from django.utils import timezone

from billing.usage.forwarding import usage_forwarding_process
from billing.usage.models import UsageForwardingRun


def drain_usage_forwarding(rounds: int = 5) -> None:
    """Run usage forwarding until no run is pending, not waiting for backoff delays."""
    for _ in range(rounds):
        pending = UsageForwardingRun.objects.filter(status="pending")
        if not pending.exists():
            break
        pending.update(available_at=timezone.now())
        for pk in list(pending.values_list("id", flat=True)):
            usage_forwarding_process(run_id=pk)
    unfinished = list(
        UsageForwardingRun.objects.exclude(status__in=["done", "superseded"]).values(
            "status", "last_error"
        )
    )
    assert unfinished == [], f"usage forwarding did not drain: {unfinished}"
