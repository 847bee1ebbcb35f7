"""Liveness and readiness. Readiness names every failing dependency.

Only the database takes the instance out of rotation (503): the outbox lets writes go on
through a cache or broker outage, so those are reported in the body and in /metrics
(`dependency_up`), never as a failed probe.
"""

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django_redis import get_redis_connection
from kombu import Connection

logger = logging.getLogger(__name__)


def live(request):
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache() -> None:
    # The cache ignores errors by design; readiness must see them, so ask Redis directly.
    get_redis_connection("default").ping()
    cache.get("health-probe")


def _broker() -> None:
    # Socket timeouts too: a broker that accepts connections but never answers must fail
    # the probe in seconds, not pin a web worker.
    options = {"socket_timeout": 2, "socket_connect_timeout": 2}
    with Connection(
        settings.CELERY_BROKER_URL, connect_timeout=2, transport_options=options
    ) as conn:
        conn.ensure_connection(max_retries=0)
        # RabbitMQ has answered once the connection is made (the AMQP handshake); Redis
        # accepts a connection before it answers anything, so ask it.
        client = getattr(conn.default_channel, "client", None)
        if client is not None:  # the Redis transport: prove the server answers
            client.ping()


CHECKS = {"database": _database, "cache": _cache, "broker": _broker}


# Without these the instance cannot serve at all; the others degrade it.
CRITICAL = frozenset({"database"})


def run_checks() -> dict[str, str]:
    """ "ok" or "error: <ExceptionClass>" for every dependency (no internal detail)."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:
            logger.warning("readiness check failed", extra={"component": name, "error": str(exc)})
            results[name] = f"error: {exc.__class__.__name__}"
    return results


def ready(request):
    results = run_checks()
    failing = [name for name, result in results.items() if result != "ok"]
    down = any(name in CRITICAL for name in failing)
    status = "fail" if down else "degraded" if failing else "ok"
    body = {"status": status, "failing": failing, "checks": results}
    return JsonResponse(body, status=503 if down else 200)


class HealthCheckMiddleware:
    """Answers the probes before host validation: orchestrators probe by pod IP."""

    routes = {"/health/live/": live, "/health/ready/": ready}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = self.routes.get(request.path_info)
        if view is not None and request.method in ("GET", "HEAD"):
            return view(request)
        return self.get_response(request)
