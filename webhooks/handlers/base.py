from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from webhooks.models import WebhookEvent


@dataclass
class Outcome:
    """What a handler did: `applied` False means the event was deliberately not applied."""

    applied: bool = True
    note: str = ""
    customer_id: Any = None
    related: list[dict[str, str]] = field(default_factory=list)


Handler = Callable[[WebhookEvent, dict[str, Any]], Outcome]
