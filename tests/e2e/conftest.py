"""A real Celery worker on a Redis of its own, so a test may stop and restart the broker."""

import shutil
import subprocess
import time

import pytest
import redis as redis_lib
from celery.contrib.testing.worker import start_worker

from config.celery import app as celery_app
from tests.helpers.providers import free_port


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis_lib.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis_lib.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def broker(settings):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis()
    redis.start()
    previous = celery_app.conf.broker_url
    settings.CELERY_BROKER_URL = redis.url
    celery_app.conf.broker_url = redis.url
    # Producers are pooled per broker URL; drop the old pool so publishes go to ours.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    try:
        yield redis
    finally:
        redis.stop()
        celery_app.conf.broker_url = previous
        celery_app._pool = None
        celery_app.amqp._producer_pool = None


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
