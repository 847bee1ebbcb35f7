"""Reads over the outbox: the backlog and the `sync` block of API objects."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Min, Q
from django.utils import timezone

from billing.providers import provider_enabled
from billing.sync.models import OutboxMessage


@dataclass(frozen=True)
class OutboxBacklog:
    counts: dict[tuple[str, str], int]
    oldest_pending_age: dict[str, float]
    # Pending messages that have failed at least once, by provider: syncs a provider
    # keeps refusing or timing out, as opposed to a queue that is merely busy.
    retrying: dict[str, int]


def outbox_backlog() -> OutboxBacklog:
    unfinished = OutboxMessage.objects.filter(
        status__in=[OutboxMessage.Status.PENDING, OutboxMessage.Status.PROCESSING]
    )
    counts, retrying = {}, {}
    for group in unfinished.values("provider", "status").annotate(
        n=Count("id"), retried=Count("id", filter=Q(attempts__gt=0))
    ):
        counts[(group["provider"], group["status"])] = group["n"]
        if group["status"] == OutboxMessage.Status.PENDING:
            retrying[group["provider"]] = group["retried"]
    failed = OutboxMessage.objects.filter(status=OutboxMessage.Status.FAILED)
    for row in failed.values("provider").annotate(n=Count("id")):
        counts[(row["provider"], "failed")] = row["n"]
    now = timezone.now()
    oldest = {
        row["provider"]: (now - row["oldest"]).total_seconds()
        for row in unfinished.filter(status=OutboxMessage.Status.PENDING)
        .values("provider")
        .annotate(oldest=Min("created_at"))
    }
    return OutboxBacklog(counts=counts, oldest_pending_age=oldest, retrying=retrying)


_STATUS = {
    OutboxMessage.Status.PENDING: "pending",
    OutboxMessage.Status.PROCESSING: "pending",
    OutboxMessage.Status.DONE: "synced",
    OutboxMessage.Status.FAILED: "failed",
}


def sync_states(
    *, object_type: str, objects: Iterable, remote_ids: dict[str, str]
) -> dict[str, dict[str, dict]]:
    """The `sync` block of each object, from its latest outbox message per provider.

    `remote_ids` names the providers the object goes to and the attribute holding each
    one's id, so an object whose messages were purged still reads as synced.
    """
    objects = list(objects)
    ids = [str(obj.pk) for obj in objects]
    latest: dict[tuple[str, str], OutboxMessage] = {}
    messages = (
        OutboxMessage.objects.filter(object_type=object_type, object_id__in=ids)
        .exclude(status=OutboxMessage.Status.SUPERSEDED)
        .order_by("object_id", "provider", "-created_at", "-id")
        .distinct("object_id", "provider")
    )
    for message in messages:
        latest[(message.object_id, message.provider)] = message
    states = {}
    for obj in objects:
        block = {}
        for provider in sorted(remote_ids):
            found = latest.get((str(obj.pk), provider))
            if found is not None:
                status = _STATUS[OutboxMessage.Status(found.status)]
                error = found.last_error or None
            elif not provider_enabled(provider):
                status, error = "disabled", None
            elif getattr(obj, remote_ids[provider], None):
                status, error = "synced", None
            else:
                status, error = "pending", None
            block[provider] = {"status": status, "error": error}
        states[str(obj.pk)] = block
    return states
