"""Publishing Celery tasks from code that must not fail or wait when the broker is down.

Callers (the outbox, webhook intake) have already committed the row the task is about; a
sweeper re-publishes rows whose task was not published. So a publish failure is logged,
never raised, and after one failure this process stops trying for a while: a hung broker
costs one request a timeout, not every request.
"""

import logging
import time
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)
_paused_until = 0.0


def publish_task(
    task: Any,
    *,
    args: list,
    countdown: float = 0,
    request_id: str | None = None,
    force: bool = False,
) -> bool:
    """Publish `task(*args)`; False if it was not published (the row's sweeper will)."""
    global _paused_until
    if not force and time.monotonic() < _paused_until:
        return False
    headers = {"request_id": request_id} if request_id else None
    try:
        task.apply_async(args=args, countdown=countdown or None, retry=False, headers=headers)
    except Exception as exc:  # kombu raises many types; all mean "not published"
        _paused_until = time.monotonic() + settings.PUBLISH_PAUSE_SECONDS
        logger.warning(
            "task publish failed; the sweeper will publish it",
            extra={"task": task.name, "error": exc.__class__.__name__},
        )
        return False
    _paused_until = 0.0
    return True
