"""Customer creation: POST /api/v1/customers/ through the full stack, against a bare view.

Both targets are served by one gunicorn process (config.wsgi with bench.settings):

  full  POST /api/v1/customers/ with `Authorization: Bearer <key>`: the project's
        middleware, DRF, API key auth, the transactional idempotency mixin, the
        serializer's validation, services.customer_create, the outbox receiver.
  bare  POST /bench/bare-customers/ (bench.views): json.loads, Customer(**fields).save().
        The middleware and the post_save receiver run here too; nothing else does.

The targets run full, bare, bare, full (each half of BENCH_SECONDS), so a drift of the
machine during the run weighs on both alike. Every request carries a new external_id, and
only a 201 counts as success.

Environment: BENCH_SECONDS (10, measured seconds per target), BENCH_MAX_REQUESTS (per
target, no limit), BENCH_THREADS (8 client threads), BENCH_WARMUP (100 requests per
target), BENCH_WORKERS (2) and BENCH_SERVER_THREADS (1) for gunicorn, BENCH_IDEMPOTENCY
(0; 1 adds a fresh Idempotency-Key to every full-stack request).
"""

import json
import os
import uuid

from bench import Result
from bench._harness import (
    GunicornServer,
    LoadStats,
    env_float,
    env_int,
    generate_load,
    truncate_tables,
)

NAME = "customers"
FULL_PATH = "/api/v1/customers/"
BARE_PATH = "/bench/bare-customers/"


def _body(run_id: str, target: str, n: int) -> bytes:
    return json.dumps(
        {
            "external_id": f"bench-{run_id}-{target}-{n}",
            "name": f"Bench Customer {n}",
            "email": f"customer{n}@example.com",
            "currency": "EUR",
            "country": "FR",
            "city": "Paris",
            "metadata": {"source": "bench"},
        }
    ).encode()


def _reset_tables() -> None:
    """Start every run from empty customer tables, so runs are comparable."""
    from django.apps import apps

    models = [
        apps.get_model("customers", "Customer"),
        apps.get_model("customers", "CustomerEvent"),
        apps.get_model("core", "IdempotencyKey"),
        apps.get_model("sync", "OutboxMessage"),
        apps.get_model("pghistory", "Context"),
        # PostgreSQL truncates a table only with every table whose foreign keys point at
        # it: webhook events reference customers, and are referenced in turn.
        apps.get_model("webhooks", "WebhookEvent"),
        apps.get_model("webhooks", "ObjectVersion"),
        apps.get_model("webhooks", "UsageEventError"),
    ]
    truncate_tables([model._meta.db_table for model in models])


def _result(stats: LoadStats, baseline: LoadStats | None = None) -> Result:
    ratio = None
    if baseline is not None and baseline.rps:
        ratio = stats.rps / baseline.rps
    return Result(
        benchmark=NAME,
        target=stats.target,
        requests=stats.requests,
        errors=stats.errors,
        seconds=stats.seconds,
        rps=stats.rps,
        p50_ms=stats.percentile_ms(50),
        p99_ms=stats.percentile_ms(99),
        baseline=baseline.target if baseline is not None else None,
        ratio=ratio,
        extra={"client_cpu_percent": 100 * stats.client_cpu_seconds / (stats.seconds or 1)},
    )


def run() -> list[Result]:
    from django.db import connection

    from core.models import ApiKey

    seconds = env_float("BENCH_SECONDS", 10.0)
    max_requests = env_int("BENCH_MAX_REQUESTS", 0) or None
    threads = env_int("BENCH_THREADS", 8)
    warmup = env_int("BENCH_WARMUP", 100)
    idempotency = os.environ.get("BENCH_IDEMPOTENCY", "0") not in ("", "0")
    run_id = uuid.uuid4().hex[:8]

    _reset_tables()
    _, raw_key = ApiKey.generate(name=f"bench-{run_id}")
    connection.close()  # the parent holds no connection while the server works

    def full(n: int):
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {raw_key}",
        }
        if idempotency:
            headers["Idempotency-Key"] = f"bench-{run_id}-{n}"
        return "POST", FULL_PATH, _body(run_id, "full", n), headers

    def bare(n: int):
        return "POST", BARE_PATH, _body(run_id, "bare", n), {"Content-Type": "application/json"}

    factories = {"full": full, "bare": bare}
    totals = {target: LoadStats(target=target) for target in factories}
    segment_seconds = seconds / 2
    segment_max = -(-max_requests // 2) if max_requests else None

    server = GunicornServer(
        workers=env_int("BENCH_WORKERS", 2), threads=env_int("BENCH_SERVER_THREADS", 1)
    )
    try:
        with server:
            print(
                f"[{NAME}] {server.description}; {threads} client threads; "
                f"{seconds:g}s per target (full, bare, bare, full); "
                f"idempotency key: {'yes' if idempotency else 'no'}",
                flush=True,
            )
            for target, factory in factories.items():
                if warmup:
                    warm = generate_load(
                        target=target, port=server.port, factory=factory, expected_status=201,
                        threads=threads, seconds=max(5.0, seconds), max_requests=warmup,
                    )  # fmt: skip
                    if warm.errors:
                        print(f"[{NAME}] warm-up {target}: {warm.errors} failures {warm.failures}")
            for index, target in enumerate(["full", "bare", "bare", "full"], start=1):
                stats = generate_load(
                    target=target, port=server.port, factory=factories[target],
                    expected_status=201, threads=threads, seconds=segment_seconds,
                    max_requests=segment_max,
                )  # fmt: skip
                print(
                    f"[{NAME}] segment {index} {target:<4}  {stats.requests:6d} req  "
                    f"{stats.rps:8.1f} req/s  p50 {stats.percentile_ms(50):7.2f} ms  "
                    f"p99 {stats.percentile_ms(99):7.2f} ms  errors {stats.errors}  "
                    f"client cpu {100 * stats.client_cpu_seconds / (stats.seconds or 1):.0f}%",
                    flush=True,
                )
                totals[target].merge(stats)
            failed = any(stats.errors for stats in totals.values())
            if failed:
                print(f"\n[{NAME}] server log (tail):\n{server.log_tail()}\n", flush=True)
    finally:
        server.cleanup()

    for stats in totals.values():
        if stats.errors:
            print(
                f"\n!!! [{NAME}] {stats.target}: {stats.errors} of {stats.requests} requests "
                f"FAILED: {stats.failures}",
                flush=True,
            )
            for sample in stats.samples:
                print(f"!!!   {sample}", flush=True)
    return [_result(totals["full"], baseline=totals["bare"]), _result(totals["bare"])]
