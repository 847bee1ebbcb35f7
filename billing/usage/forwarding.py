"""Forwarding usage to Lago (BILLING_ENGINE=lago): every event reaches Lago exactly once.

Records are written `pending`; recording them also queues one outbox message (coalesced:
one pending message stands for all pending records). Its handler sends them in batches of
100. A retry after a timeout or 5xx resends what was not confirmed; Lago refuses an event
it already holds with `value_already_exist` and, since one such refusal rejects its whole
batch, those events are marked sent and the rest of the batch is sent again without them.
"""

import logging
from datetime import UTC

from django.db import transaction

from billing.providers import lago
from billing.providers.base import ProviderUnavailable
from billing.sync.outbox import outbox_record, register
from billing.usage.models import UsageRecord

logger = logging.getLogger(__name__)
ACTION = "usage.forward"
OBJECT = ("billing.usagerecord", "lago-forwarding")
BATCHES_PER_RUN = 50
ALREADY = "value_already_exist"


def usage_forwarding_queue() -> None:
    """Called in the recording transaction: make sure a forwarding run is queued."""
    outbox_record(action=ACTION, object_type=OBJECT[0], object_id=OBJECT[1])


def _lago_event(record: UsageRecord) -> dict:
    return {
        "transaction_id": record.transaction_id,
        "external_subscription_id": record.subscription.external_id,
        "code": record.metric.code,
        "timestamp": f"{record.timestamp.astimezone(UTC).timestamp():.3f}",
        "properties": record.properties,
    }


@register(ACTION, "lago")
def usage_forward_lago(_object_id: str) -> None:
    """Send pending records, oldest first, until none is left (bounded per run)."""
    for _ in range(BATCHES_PER_RUN):
        if not _forward_one_batch():
            return
    usage_forwarding_queue()  # more left: another run takes over


def _forward_one_batch() -> bool:
    with transaction.atomic():
        batch = list(
            UsageRecord.objects.select_related("subscription", "metric")
            .filter(lago_status=UsageRecord.LagoStatus.PENDING)
            .order_by("received_at", "id")[: lago.BATCH_LIMIT]
        )
    if not batch:
        return False
    while batch:
        errors = lago.events_batch(events=[_lago_event(r) for r in batch])
        if not errors:
            _mark(batch, UsageRecord.LagoStatus.SENT)
            return True
        refused = {int(index): detail for index, detail in errors.items()}
        already = [r for i, r in enumerate(batch) if ALREADY in str(refused.get(i, ""))]
        invalid = [r for i, r in enumerate(batch) if i in refused and r not in already]
        if not already and not invalid:
            # Errors that name none of the events sent: retry later rather than loop.
            raise ProviderUnavailable("lago", f"unexpected batch errors: {str(errors)[:200]}")
        _mark(already, UsageRecord.LagoStatus.SENT)
        _mark(invalid, UsageRecord.LagoStatus.REFUSED)
        for record in invalid:
            logger.error(
                "lago refused a usage event",
                extra={
                    "transaction_id": record.transaction_id,
                    "error": str(refused[batch.index(record)])[:300],
                },
            )
        batch = [r for r in batch if r not in already and r not in invalid]
    return True


def _mark(records: list[UsageRecord], status: str) -> None:
    if records:
        UsageRecord.objects.filter(
            id__in=[r.id for r in records], timestamp__in={r.timestamp for r in records}
        ).update(lago_status=status)
