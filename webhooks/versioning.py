"""Out-of-order protection: apply a provider's state only if it is newer than what we hold."""

from datetime import datetime

from django.db import connection

from webhooks.models import ObjectVersion, WebhookEvent


def claim_version(
    *,
    event: WebhookEvent,
    object_type: str,
    object_id: str,
    version_at: datetime,
    rank: int = 0,
) -> str:
    """Lock the object's version row and say whether `event` may be applied.

    Returns "newer" (apply, the row now names this event), "same" (an equal version with
    another event: the caller should fetch the current object instead of trusting either),
    or "older" (skip). Must run inside the transaction that applies the event, so the row
    lock serialises concurrent handlers of one object.
    """
    with connection.cursor() as cursor:
        # Create the row if absent without a read-then-write race.
        cursor.execute(
            f"""
            INSERT INTO {ObjectVersion._meta.db_table}
                (provider, object_type, object_id, version_at, rank, event_id, updated_at)
            VALUES (%s, %s, %s, NULL, -1, NULL, now())
            ON CONFLICT (provider, object_type, object_id) DO NOTHING
            """,
            [event.provider, object_type, object_id],
        )
    current = ObjectVersion.objects.select_for_update().get(
        provider=event.provider, object_type=object_type, object_id=object_id
    )
    if current.version_at is not None:
        incoming, held = (version_at, rank), (current.version_at, current.rank)
        if incoming < held:
            return "older"
        if incoming == held and current.event_id not in (None, event.pk):
            return "same"
    current.version_at, current.rank, current.event = version_at, rank, event
    current.save(update_fields=["version_at", "rank", "event", "updated_at"])
    return "newer"
