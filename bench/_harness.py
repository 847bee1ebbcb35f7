"""Shared pieces of the benchmarks: the bench database and Redis, a gunicorn server, a load
generator.

Everything binds and connects to 127.0.0.1 only, and every loop is bounded in time.
"""

import http.client
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_MODULE = "bench.settings"
HOST = "127.0.0.1"


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_list(name: str, default: list[int]) -> list[int]:
    """A comma-separated list of integers, e.g. BENCH_BILLING_WORKERS=1,2,4."""
    raw = os.environ.get(name, "")
    return [int(part) for part in raw.split(",") if part.strip()] or default


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


# --- Database --------------------------------------------------------------------------
def prepare_database() -> None:
    """Create the bench database if absent, then `manage.py migrate` it.

    Call before `django.setup()`-time code touches the database; reads bench.settings.
    """
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    params = {
        "host": db.get("HOST") or HOST,
        "port": db.get("PORT") or 5432,
        "user": db.get("USER") or "postgres",
        "password": db.get("PASSWORD") or None,
        "dbname": "postgres",
        "connect_timeout": 5,
    }
    name = db["NAME"]
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}) as conn:
        conn.autocommit = True
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}", flush=True)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE},
        check=True,
        timeout=300,
    )


def _refuse_unless_bench_database() -> None:
    from django.conf import settings

    name = settings.DATABASES["default"]["NAME"]
    if not name.startswith("bench"):
        raise RuntimeError(f"refusing to empty tables of database {name!r}")


def truncate_tables(tables: list[str]) -> None:
    """TRUNCATE `tables` of the bench database in one statement (so tables whose foreign
    keys point at each other can go together). Refuses any database not named `bench*`.

    PostgreSQL truncates a table only with every table whose foreign keys point at it, so
    those (found in pg_constraint, transitively) are truncated too, and named: e.g.
    customers_customer takes customers_paymentmethod, subscriptions_subscription and
    subscriptions_subscriptionphase with it. The usage tables are never among them: a
    usage record points at its subscription and metric without a constraint (it is
    partitioned), so its rows outlive a truncation of subscriptions. `delete_usage` removes
    usage rows selectively.
    """
    from django.db import connection

    _refuse_unless_bench_database()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE closure(rel) AS (
                SELECT c.oid FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = current_schema() AND c.relname = ANY(%s)
                UNION
                SELECT con.conrelid FROM pg_constraint con
                JOIN closure ON con.confrelid = closure.rel
                WHERE con.contype = 'f' AND con.conparentid = 0
            )
            SELECT c.relname FROM closure JOIN pg_class c ON c.oid = closure.rel
            ORDER BY c.relname
            """,
            [list(tables)],
        )
        extra = [name for (name,) in cursor.fetchall() if name not in tables]
        if extra:
            print(
                f"(truncating also {', '.join(extra)}: their foreign keys point at "
                f"{', '.join(tables)})",
                flush=True,
            )
        quoted = ", ".join(connection.ops.quote_name(table) for table in [*tables, *extra])
        cursor.execute(f"TRUNCATE {quoted}")


def delete_usage(*, metric_ids: list, transaction_prefix: str) -> tuple[int, int]:
    """Delete the usage records of `metric_ids` and the dedupe rows whose transaction_id
    starts with `transaction_prefix`, then VACUUM both tables; returns (records,
    transactions) deleted. Refuses any database not named `bench*`.

    For benchmarks that write usage next to data they keep (billing_usagerecord is
    partitioned and has no foreign keys, so TRUNCATE would take every row of every
    subscription): a metric of their own identifies their rows, even rows whose
    subscription a truncation of subscriptions has since removed.
    """
    from django.db import connection

    from billing.usage.models import UsageRecord, UsageTransaction

    _refuse_unless_bench_database()
    records, transactions = UsageRecord._meta.db_table, UsageTransaction._meta.db_table
    prefix = transaction_prefix.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {records} WHERE metric_id = ANY(%s::uuid[])", [metric_ids])
        deleted_records = cursor.rowcount
        cursor.execute(f"DELETE FROM {transactions} WHERE transaction_id LIKE %s", [f"{prefix}%"])
        deleted_transactions = cursor.rowcount
        if deleted_records or deleted_transactions:
            cursor.execute(f"VACUUM (ANALYZE) {records}, {transactions}")
    return deleted_records, deleted_transactions


# --- Redis -----------------------------------------------------------------------------
def bench_redis():
    """A client of the Redis database of bench.settings (its cache and Celery broker).

    Refuses anything but a numbered database other than 0 (`make run`'s) on 127.0.0.1.
    """
    import redis
    from django.conf import settings

    url = settings.CELERY_BROKER_URL
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("host") not in (HOST, "localhost") or not kwargs.get("db"):
        client.close()
        raise RuntimeError(f"refusing to use Redis {url!r}: not a bench database on {HOST}")
    return client


def flush_bench_redis() -> int:
    """FLUSHDB the bench Redis database; returns how many keys it held."""
    client = bench_redis()
    try:
        keys = client.dbsize()
        client.flushdb()
        return keys
    finally:
        client.close()


# --- Server ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class GunicornServer:
    """`gunicorn config.wsgi:application` with bench.settings, as a context manager.

    The server runs in a process group of its own, which is terminated on exit whatever
    happened (SIGTERM, then SIGKILL after a grace period).
    """

    def __init__(self, *, workers: int = 2, threads: int = 1, extra_args: list[str] | None = None):
        self.workers = workers
        self.threads = threads
        self.extra_args = extra_args or []
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="bench-gunicorn-", suffix=".log", delete=False
        )

    @property
    def description(self) -> str:
        kind = "sync" if self.threads == 1 else "gthread"
        return (
            f"gunicorn {kind} workers={self.workers} threads={self.threads} on {HOST}:{self.port}"
        )

    def __enter__(self) -> "GunicornServer":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> None:
        command = [
            sys.executable, "-m", "gunicorn", "config.wsgi:application",
            "--bind", f"{HOST}:{self.port}",
            "--workers", str(self.workers),
            "--threads", str(self.threads),
            "--chdir", str(ROOT),
            "--no-control-socket",
            "--log-level", "warning",
            "--error-logfile", "-",
            "--timeout", "30",
            "--graceful-timeout", "5",
            *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"gunicorn exited with {code}:\n{self.log_tail()}")
            conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
            try:
                conn.request("GET", "/health/live/")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn not ready within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            # The group is the one start_new_session made for this server: ours alone.
            pgid = process.pid
            try:
                # Graceful: the master stops its workers (SIGKILLing any still busy after
                # --graceful-timeout) and reaps them before it exits.
                os.killpg(pgid, signal.SIGTERM)
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # Every member of the group, master and workers, is this server's.
                os.killpg(pgid, signal.SIGKILL)
                process.wait(timeout=5)
            except ProcessLookupError:
                pass
        if not self._log.closed:
            self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        if not self._log.closed:
            self._log.flush()
        text = Path(self._log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def cleanup(self) -> None:
        Path(self._log.name).unlink(missing_ok=True)


# --- Load ------------------------------------------------------------------------------
# (method, path, body, headers) of request number n; n is unique within the process.
RequestFactory = Callable[[int], tuple[str, str, bytes, dict[str, str]]]

_sequence = itertools.count(1)  # next() on a count is atomic under the GIL


@dataclass
class LoadStats:
    target: str
    seconds: float = 0.0
    ok: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)  # "status 500" / exception name
    samples: list[str] = field(default_factory=list)  # a few failing answers, for the report
    client_cpu_seconds: float = 0.0

    @property
    def requests(self) -> int:
        return self.ok + self.errors

    @property
    def errors(self) -> int:
        return sum(self.failures.values())

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank]

    def merge(self, other: "LoadStats") -> None:
        self.seconds += other.seconds
        self.ok += other.ok
        self.latencies_ms.extend(other.latencies_ms)
        for key, count in other.failures.items():
            self.failures[key] = self.failures.get(key, 0) + count
        self.samples.extend(other.samples[: max(0, 5 - len(self.samples))])
        self.client_cpu_seconds += other.client_cpu_seconds


def generate_load(
    *,
    target: str,
    port: int,
    factory: RequestFactory,
    expected_status: int,
    threads: int,
    seconds: float,
    max_requests: int | None = None,
    request_timeout: float = 10.0,
) -> LoadStats:
    """`threads` clients, each on its own keep-alive connection, for `seconds` or until
    `max_requests` were sent, whichever comes first. A request counts as OK only if it is
    answered with `expected_status`; every other outcome is counted as a failure."""
    stats = LoadStats(target=target)
    lock = threading.Lock()
    budget = itertools.count(1)
    start_barrier = threading.Barrier(threads + 1)
    deadline_box: list[float] = []
    ends: list[float] = []

    def client() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=request_timeout)
        latencies: list[float] = []
        failures: dict[str, int] = {}
        samples: list[str] = []
        ok = 0
        start_barrier.wait()
        deadline = deadline_box[0]
        try:
            while time.monotonic() < deadline:
                if max_requests is not None and next(budget) > max_requests:
                    break
                method, path, body, headers = factory(next(_sequence))
                started = time.perf_counter()
                try:
                    conn.request(method, path, body=body, headers=headers)
                    response = conn.getresponse()
                    payload = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()  # the next request reconnects
                    name = type(exc).__name__
                    failures[name] = failures.get(name, 0) + 1
                    if len(samples) < 3:
                        samples.append(f"{method} {path}: {name}: {exc}")
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status == expected_status:
                    ok += 1
                else:
                    key = f"status {response.status}"
                    failures[key] = failures.get(key, 0) + 1
                    if len(samples) < 3:
                        samples.append(f"{method} {path}: {response.status} {payload[:300]!r}")
        finally:
            conn.close()
            with lock:
                ends.append(time.perf_counter())
                stats.ok += ok
                stats.latencies_ms.extend(latencies)
                for key, count in failures.items():
                    stats.failures[key] = stats.failures.get(key, 0) + count
                stats.samples.extend(samples[: max(0, 5 - len(stats.samples))])

    workers = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    cpu_before = time.process_time()
    deadline_box.append(time.monotonic() + seconds)
    started = time.perf_counter()
    start_barrier.wait()
    for worker in workers:
        # Bounded: a request times out after request_timeout, then the deadline stops it.
        worker.join(timeout=seconds + 2 * request_timeout + 5)
    if any(worker.is_alive() for worker in workers):
        stats.failures["client thread hung"] = sum(w.is_alive() for w in workers)
    stats.seconds = (max(ends) if ends else time.perf_counter()) - started
    stats.client_cpu_seconds = time.process_time() - cpu_before
    return stats
