import logging

from celery import shared_task
from django.utils import timezone

from subscriptions import selectors, services
from subscriptions.models import Subscription

logger = logging.getLogger(__name__)


@shared_task
def subscriptions_advance() -> dict[str, int]:
    """Start pending subscriptions and close ended periods (downgrades, cancellations).

    Safe to run twice or late: each subscription is advanced under its row lock, only for
    what is due at that moment.
    """
    now = timezone.now()
    outcomes: dict[str, int] = {}
    for pk in selectors.subscriptions_due(now=now):
        outcome = services.subscription_advance(subscription=Subscription(pk=pk), now=now)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    if outcomes:
        logger.info("subscriptions advanced", extra={"outcomes": outcomes})
    return outcomes
