"""The Celery broker is a setting (CELERY_BROKER_URL): Redis or RabbitMQ, each with the
transport options that make it safe for our tasks. README "Choosing a broker" says which
to pick.

Redis: kombu's emulation of acknowledgements. A task a worker took and did not ack is
handed out again after `visibility_timeout`, so that must outlast any task and any
countdown; socket timeouts keep a hung server from pinning a publisher.

RabbitMQ (amqp://): real acknowledgements, and publisher confirms (`confirm_publish`), so a
publish returns only once the broker has the message. RabbitMQ closes the channel of a
consumer holding an unacknowledged message past its `consumer_timeout` (30 minutes by
default), and a countdown task is held unacknowledged by the worker until it is due: so
no countdown may be longer than TASK_MAX_COUNTDOWN_SECONDS (core.publish caps it; the row
the task is about keeps its own due time, and the sweeper publishes it again then).
"""

from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

REDIS_SCHEMES = frozenset({"redis", "rediss", "redis+socket"})
AMQP_SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})


def broker_kind(url: str) -> str:
    """'redis' or 'amqp', from the URL's scheme; anything else is a configuration error."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in REDIS_SCHEMES:
        return "redis"
    if scheme in AMQP_SCHEMES:
        return "amqp"
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL: a redis:// or amqp:// URL is required, not {scheme or url!r}"
    )


def transport_options(url: str, *, visibility_timeout: int) -> dict[str, Any]:
    """The broker's transport options (CELERY_BROKER_TRANSPORT_OPTIONS)."""
    if broker_kind(url) == "redis":
        return {
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
            "visibility_timeout": visibility_timeout,
        }
    return {"confirm_publish": True, "connect_timeout": 2}
