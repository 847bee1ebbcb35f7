"""The broker is a setting (core/broker.py): Redis or RabbitMQ, each with its options;
readiness checks whichever is configured; no countdown outlasts what RabbitMQ allows."""

import socket

import pytest
from django.core.exceptions import ImproperlyConfigured
from kombu import Connection

from core import publish
from core.broker import broker_kind, transport_options

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"


def rabbitmq_up() -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", 5672)) == 0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("redis://127.0.0.1:6379/0", "redis"),
        ("rediss://cache.example.com:6380/0", "redis"),
        ("amqp://guest:guest@127.0.0.1:5672//", "amqp"),
        ("amqps://u:p@mq.example.com:5671/billing", "amqp"),
        ("pyamqp://guest@localhost//", "amqp"),
    ],
)
def test_the_scheme_names_the_broker(url, kind):
    assert broker_kind(url) == kind


@pytest.mark.parametrize("url", ["sqs://", "memory://", "127.0.0.1:6379", ""])
def test_any_other_broker_is_a_configuration_error(url):
    with pytest.raises(ImproperlyConfigured, match="CELERY_BROKER_URL"):
        transport_options(url, visibility_timeout=3600)


def test_each_broker_gets_its_own_options():
    redis = transport_options("redis://127.0.0.1:6379/0", visibility_timeout=3600)
    amqp = transport_options(RABBITMQ, visibility_timeout=3600)

    assert redis["visibility_timeout"] == 3600 and redis["socket_timeout"] == 5
    # A publish to RabbitMQ returns once the broker has confirmed it.
    assert amqp == {"confirm_publish": True, "connect_timeout": 2}


def test_no_countdown_outlasts_the_cap(settings, monkeypatch):
    settings.TASK_MAX_COUNTDOWN_SECONDS = 900
    sent = []
    monkeypatch.setattr(
        publish.current_app, "send_task", lambda task, **kwargs: sent.append(kwargs)
    )

    assert publish.publish_task("t", args=[1], countdown=6 * 3600, force=True)
    assert publish.publish_task("t", args=[2], countdown=30, force=True)
    assert publish.publish_task("t", args=[3], force=True)

    assert [kwargs["countdown"] for kwargs in sent] == [900, 30, None]


@pytest.mark.django_db
@pytest.mark.skipif(not rabbitmq_up(), reason="no RabbitMQ on 127.0.0.1:5672")
def test_readiness_checks_a_rabbitmq_broker(anonymous_client, settings):
    settings.CELERY_BROKER_URL = RABBITMQ
    assert anonymous_client.get("/health/ready/").json()["checks"]["broker"] == "ok"

    settings.CELERY_BROKER_URL = f"amqp://guest:guest@127.0.0.1:{closed_port()}//"
    body = anonymous_client.get("/health/ready/").json()
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"].startswith("error: ")


@pytest.mark.skipif(not rabbitmq_up(), reason="no RabbitMQ on 127.0.0.1:5672")
def test_a_task_published_to_rabbitmq_is_confirmed_and_delivered():
    from config.celery import app
    from tests.helpers.broker import publishing_to

    queue = "billing-test-broker"
    with Connection(RABBITMQ) as conn:
        conn.default_channel.queue_declare(queue, durable=True, auto_delete=False)
        conn.default_channel.queue_purge(queue)
    with publishing_to(RABBITMQ):
        app.send_task("billing.sync.tasks.outbox_sweep", queue=queue, retry=False)
    with Connection(RABBITMQ) as conn:
        message = conn.default_channel.basic_get(queue, no_ack=True)
        conn.default_channel.queue_delete(queue)
    assert message is not None
    assert message.headers["task"] == "billing.sync.tasks.outbox_sweep"
