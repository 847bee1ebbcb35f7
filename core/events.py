"""Domain events: how a lower layer tells a higher one that something happened.

A lower app declares its events in its `events.py` and publishes them; a higher app
subscribes in its `AppConfig.ready()`. The publisher never imports the subscriber, so the
layers stay one-way (README, "Architecture").

Subscribers run synchronously, in the publisher's transaction, in subscription order. They
record intent (an outbox row, a field), never call a provider. An exception propagates to
the publisher: a subscriber can refuse (a domain error) and the whole change rolls back.
Where a lower layer needs an answer from above ("is a payment in flight?"), the event is a
question and `publish` returns the subscribers' answers.
"""

from collections.abc import Callable
from typing import Any

Subscriber = Callable[..., Any]


class Event:
    def __init__(self, name: str, doc: str = ""):
        self.name = name
        self.__doc__ = doc
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Subscriber:
        """Usable as a decorator; subscribing the same function twice is a no-op."""
        if subscriber not in self._subscribers:
            self._subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def publish(self, **payload: Any) -> list[Any]:
        """Call every subscriber with `payload` (keywords only); their answers, in order."""
        return [subscriber(**payload) for subscriber in list(self._subscribers)]

    def __repr__(self) -> str:
        return f"Event({self.name!r}, {len(self._subscribers)} subscriber(s))"
