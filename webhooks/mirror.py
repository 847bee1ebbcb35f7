"""dj-stripe's copy of Stripe objects, kept by the outbox, never inside a handler.

dj-stripe's sync may fetch related objects from Stripe, and no provider call runs inside a
handler's transaction. So a handler only records, in its transaction, that an object must
be mirrored; the outbox does it afterwards, with its retries, one object at a time:
- `mirror`: the payload of the newest event applied for the object (its ObjectVersion
  names it), so the mirror moves forward exactly as the events' order says;
- `refresh`: the object as Stripe holds it now, where the events cannot be ordered or our
  own API also changes the object (payment methods).
"""

import json

from billing.providers import stripe
from billing.sync.outbox import outbox_record, register
from webhooks.models import ObjectVersion

MIRROR = "stripe.mirror"
REFRESH = "stripe.refresh"


def stripe_mirror_queue(*, object_type: str, object_id: str, current: bool = False) -> None:
    """In the caller's transaction: mirror this Stripe object once that has committed."""
    outbox_record(
        action=REFRESH if current else MIRROR,
        object_type=f"stripe.{object_type}",
        object_id=f"{object_type}:{object_id}",
    )


@register(MIRROR, "stripe")
def _mirror_newest_event(object_id: str) -> None:
    object_type, _, stripe_id = object_id.partition(":")
    version = (
        ObjectVersion.objects.select_related("event")
        .filter(provider="stripe", object_type=object_type, object_id=stripe_id)
        .first()
    )
    if version is None or version.event is None:
        _refresh(object_id)
        return
    stripe.mirror_data(stripe.parse_event(json.loads(version.event.body)).data)


@register(REFRESH, "stripe")
def _refresh(object_id: str) -> None:
    object_type, _, stripe_id = object_id.partition(":")
    stripe.mirror_current(object_type=object_type, object_id=stripe_id)
