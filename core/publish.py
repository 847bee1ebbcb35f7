"""Publishing Celery tasks from code that must not fail or wait when the broker is down.

Callers (the outbox, webhook intake) have already committed the row the task is about; a
sweeper re-publishes rows whose task was not published. So a publish failure is logged,
never raised, and after one failure this process stops trying for a while: a hung broker
costs one request a timeout (two: the publish retries once, on a new connection), not
every request.
"""

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

logger = logging.getLogger(__name__)
_paused_until = 0.0


def publish_task(
    task: str,
    *,
    args: list,
    countdown: float = 0,
    request_id: str | None = None,
    force: bool = False,
) -> bool:
    """Publish the task named `task` with `args`; False if it was not published (the row's
    sweeper will). By name, so a service never imports the task module that calls it."""
    global _paused_until
    if not force and time.monotonic() < _paused_until:
        return False
    headers = {"request_id": request_id} if request_id else None
    # A longer wait is held by the worker, unacknowledged, past what RabbitMQ allows
    # (core/broker.py). The row keeps its own due time: the task that comes early finds
    # it not yet due, and the sweeper publishes it again when it is.
    countdown = min(countdown, settings.TASK_MAX_COUNTDOWN_SECONDS)
    try:
        current_app.send_task(task, args=args, countdown=countdown or None, headers=headers)
    except Exception as exc:  # kombu raises many types; all mean "not published"
        _paused_until = time.monotonic() + settings.PUBLISH_PAUSE_SECONDS
        logger.warning(
            "task publish failed; the sweeper will publish it",
            extra={"task": task, "error": exc.__class__.__name__},
        )
        return False
    _paused_until = 0.0
    return True


def republish_waiting(queryset: QuerySet, *, publish: Callable[[Any], bool], limit: int = 1000):
    """Publish again the rows of `queryset` (rows waiting for a task) whose task may be lost.

    A row is left alone for SWEEP_GRACE_SECONDS after it became due (its task is probably
    queued) and then re-published at most every SWEEP_REPUBLISH_SECONDS, so a lagging
    worker's queue is not flooded with duplicates. Returns (due, published).
    """
    now = timezone.now()
    grace = now - timedelta(seconds=settings.SWEEP_GRACE_SECONDS)
    again = now - timedelta(seconds=settings.SWEEP_REPUBLISH_SECONDS)
    due = list(
        queryset.filter(available_at__lte=grace)
        .filter(Q(published_at__isnull=True) | Q(published_at__lt=again))
        .order_by("available_at")
        .only("pk", "request_id")[:limit]
    )
    published = [row.pk for row in due if publish(row)]
    queryset.model.objects.filter(pk__in=published).update(published_at=now)
    return len(due), len(published)
