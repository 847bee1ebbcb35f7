"""A real Celery worker on a Redis of its own, so a test may stop and restart the broker."""

import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app as celery_app
from tests.helpers.broker import PrivateRedis, publishing_to


@pytest.fixture
def broker(settings):
    if not PrivateRedis.available():
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis()
    redis.start()
    settings.CELERY_BROKER_URL = redis.url
    try:
        with publishing_to(redis.url):
            yield redis
    finally:
        redis.stop()


@pytest.fixture
def worker(broker, transactional_db):
    with start_worker(
        celery_app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        shutdown_timeout=20,
        loglevel="WARNING",
    ) as running:
        yield running
