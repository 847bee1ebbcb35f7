"""Webhook intake: signed Stripe events through the full stack, against a bare view.

Both targets are served by one gunicorn process (config.wsgi with bench.settings):

  full  POST /webhooks/stripe/ with `Stripe-Signature: t=<now>,v1=<HMAC-SHA256>`: the
        project's middleware, the signature check (billing.providers.stripe), JSON parsing,
        webhooks.services.webhook_event_receive (a WebhookEvent row with the body
        encrypted, unique per (provider, event_id)) and, on commit, the Celery publish of
        webhooks.tasks.webhook_process to the bench Redis database.
  bare  POST /bench/bare-webhook/ (bench.views): one raw INSERT of the body into the
        bench-only table bench_raw_webhook. The middleware runs here too; nothing else does.

Both get the same bytes: a `payment_intent.succeeded` event of about 1.9 KB, indented as
Stripe sends them, with a new `evt_` id (so every full-stack request really stores a row,
never a duplicate), signed on the client with STRIPE_WEBHOOK_SECRET of bench.settings and
a fresh timestamp. Only a 200 counts as success. No Celery worker runs: the published
tasks pile up in the bench Redis database, which is flushed before and after the run.
Afterwards the stored rows and the queued tasks are counted: each must match the 200
answers, or the run fails.

The targets run full, bare, bare, full (each half of BENCH_SECONDS), so a drift of the
machine during the run weighs on both alike.

Environment: BENCH_SECONDS (10, measured seconds per target), BENCH_MAX_REQUESTS (per
target, no limit), BENCH_THREADS (8 client threads), BENCH_WARMUP (100 requests per
target), BENCH_WORKERS (2) and BENCH_SERVER_THREADS (1) for gunicorn.
"""

import hashlib
import hmac
import json
import time
import uuid

from bench import Result
from bench._harness import (
    GunicornServer,
    LoadStats,
    bench_redis,
    env_float,
    env_int,
    flush_bench_redis,
    generate_load,
    truncate_tables,
)

NAME = "webhooks"
FULL_PATH = "/webhooks/stripe/"
BARE_PATH = "/bench/bare-webhook/"
EXPECTED_STATUS = 200


def _event(run_id: str, n: int, now: int, api_version: str) -> dict:
    """A payment_intent.succeeded event as Stripe sends it, with ids unique to (run, n)."""
    suffix = f"{run_id}{n:010d}"
    return {
        "id": f"evt_3Bench{suffix}",
        "object": "event",
        "api_version": api_version,
        "created": now,
        "data": {
            "object": {
                "id": f"pi_3Bench{suffix}",
                "object": "payment_intent",
                "amount": 4900,
                "amount_capturable": 0,
                "amount_received": 4900,
                "application_fee_amount": None,
                "automatic_payment_methods": {"allow_redirects": "never", "enabled": True},
                "canceled_at": None,
                "cancellation_reason": None,
                "capture_method": "automatic_async",
                "client_secret": f"pi_3Bench{suffix}_secret_{uuid.uuid4().hex[:24]}",
                "confirmation_method": "automatic",
                "created": now - 2,
                "currency": "eur",
                "customer": f"cus_Bench{run_id}{n % 1000:04d}",
                "description": "Pro plan (monthly)",
                "last_payment_error": None,
                "latest_charge": f"ch_3Bench{suffix}",
                "livemode": False,
                "metadata": {
                    "customer_id": str(uuid.UUID(int=n)),
                    "external_id": f"bench-{run_id}-{n % 1000}",
                },
                "next_action": None,
                "on_behalf_of": None,
                "payment_method": f"pm_1Bench{suffix}",
                "payment_method_options": {
                    "card": {
                        "installments": None,
                        "mandate_options": None,
                        "network": None,
                        "request_three_d_secure": "automatic",
                    }
                },
                "payment_method_types": ["card"],
                "processing": None,
                "receipt_email": f"customer{n % 1000}@example.com",
                "review": None,
                "setup_future_usage": "off_session",
                "shipping": None,
                "source": None,
                "statement_descriptor_suffix": "PRO PLAN",
                "status": "succeeded",
            }
        },
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": f"req_Bench{suffix}", "idempotency_key": str(uuid.uuid4())},
        "type": "payment_intent.succeeded",
    }


def _signature(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _reset() -> None:
    """Start every run from empty webhook tables and an empty bench Redis database."""
    from django.apps import apps
    from django.db import connection

    from bench.views import BARE_WEBHOOK_TABLE, BARE_WEBHOOK_TABLE_DDL

    with connection.cursor() as cursor:
        cursor.execute(BARE_WEBHOOK_TABLE_DDL)
    models = [
        apps.get_model("webhooks", "WebhookEvent"),
        apps.get_model("webhooks", "ObjectVersion"),
        apps.get_model("webhooks", "UsageEventError"),
    ]
    truncate_tables([BARE_WEBHOOK_TABLE, *(model._meta.db_table for model in models)])
    flush_bench_redis()


def _stored_and_queued() -> tuple[int, int, int]:
    """(WebhookEvent rows of Stripe, bench_raw_webhook rows, tasks in the Celery queue)."""
    from django.db import connection

    from bench.views import BARE_WEBHOOK_TABLE
    from config.celery import app
    from webhooks.models import WebhookEvent

    full = WebhookEvent.objects.filter(provider="stripe").count()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {BARE_WEBHOOK_TABLE}")
        (bare,) = cursor.fetchone()
    client = bench_redis()
    try:
        queued = client.llen(app.conf.task_default_queue)
    finally:
        client.close()
    return full, bare, queued


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
    from django.conf import settings
    from django.db import connection

    seconds = env_float("BENCH_SECONDS", 10.0)
    max_requests = env_int("BENCH_MAX_REQUESTS", 0) or None
    threads = env_int("BENCH_THREADS", 8)
    warmup = env_int("BENCH_WARMUP", 100)
    run_id = uuid.uuid4().hex[:8]
    secret = settings.STRIPE_WEBHOOK_SECRET[0].encode()
    api_version = settings.STRIPE_API_VERSION

    _reset()
    connection.close()  # the parent holds no connection while the server works

    def signed(path: str, n: int):
        now = int(time.time())
        body = json.dumps(_event(run_id, n, now, api_version), indent=2).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": _signature(secret, now, body),
        }
        return "POST", path, body, headers

    def full(n: int):
        return signed(FULL_PATH, n)

    def bare(n: int):
        # The same signed bytes as the full stack gets; the bare view ignores the header.
        return signed(BARE_PATH, n)

    factories = {"full": full, "bare": bare}
    totals = {target: LoadStats(target=target) for target in factories}
    answered = dict.fromkeys(factories, 0)  # 200 answers, warm-up included
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
                f"body {len(full(0)[2])} bytes",
                flush=True,
            )
            for target, factory in factories.items():
                if warmup:
                    warm = generate_load(
                        target=target, port=server.port, factory=factory,
                        expected_status=EXPECTED_STATUS, threads=threads,
                        seconds=max(5.0, seconds), max_requests=warmup,
                    )  # fmt: skip
                    answered[target] += warm.ok
                    if warm.errors:
                        print(f"[{NAME}] warm-up {target}: {warm.errors} failures {warm.failures}")
                        totals[target].samples.extend(warm.samples[:2])
            for index, target in enumerate(["full", "bare", "bare", "full"], start=1):
                stats = generate_load(
                    target=target, port=server.port, factory=factories[target],
                    expected_status=EXPECTED_STATUS, threads=threads, seconds=segment_seconds,
                    max_requests=segment_max,
                )  # fmt: skip
                print(
                    f"[{NAME}] segment {index} {target:<4}  {stats.requests:6d} events  "
                    f"{stats.rps:8.1f} events/s  p50 {stats.percentile_ms(50):7.2f} ms  "
                    f"p99 {stats.percentile_ms(99):7.2f} ms  errors {stats.errors}  "
                    f"client cpu {100 * stats.client_cpu_seconds / (stats.seconds or 1):.0f}%",
                    flush=True,
                )
                answered[target] += stats.ok
                totals[target].merge(stats)
            failed = any(stats.errors for stats in totals.values())
            if failed:
                print(f"\n[{NAME}] server log (tail):\n{server.log_tail()}\n", flush=True)

        # Every 200 must have stored its row, and every stored event queued its task.
        stored_full, stored_bare, queued = _stored_and_queued()
        print(
            f"[{NAME}] answered 200 (warm-up included): full {answered['full']}, "
            f"bare {answered['bare']}; stored: webhook events {stored_full}, "
            f"raw bodies {stored_bare}; Celery tasks queued {queued}",
            flush=True,
        )
        checks = [
            ("full", "stored rows != 200 answers", stored_full, answered["full"]),
            ("full", "queued tasks != 200 answers", queued, answered["full"]),
            ("bare", "stored rows != 200 answers", stored_bare, answered["bare"]),
        ]
        for target, check, found, expected in checks:
            if found != expected:
                totals[target].failures[check] = abs(found - expected)
                totals[target].samples.append(f"{check}: {found} vs {expected}")
    finally:
        server.cleanup()
        connection.close()
        flush_bench_redis()

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
