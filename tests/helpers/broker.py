"""Brokers a test may stop and start again, and Celery processes run as production runs
them (`celery -A config worker|beat`), pointed at such a broker and at the test database.

A broker here has `kind`, `url`, `available()`, `start()`, `stop()` and `unacked()`; `start()`
after `stop()` brings it back at the same address, as a restarted broker comes back:
a private redis-server, or a private RabbitMQ node (its own name, ports and data
directory, so the machine's RabbitMQ is never touched).
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import redis as redis_lib
from kombu import Connection

from tests.helpers.providers import free_port

ROOT = Path(__file__).resolve().parents[2]
# The settings the Celery processes run with: tests/helpers/celery_settings.py.
CELERY_SETTINGS = "tests.helpers.celery_settings"


class PrivateRedis:
    """A redis-server of the test's own on a free port, with no persistence: a restart
    loses every queued message, as a broker restart without persistence does."""

    kind = "redis"

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
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
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None

    def unacked(self) -> int:
        """Messages a consumer has taken and not yet acknowledged (kombu's Redis QoS)."""
        return redis_lib.Redis(port=self.port).hlen("unacked")


class PrivateRabbitMQ:
    """A RabbitMQ node of the test's own (`rabbitmq-server` with its own node name, ports
    and data directory) that a restart keeps, as a production node keeps its durable
    queues. Started as root, the server drops to the rabbitmq user, which owns the data
    directory."""

    kind = "amqp"

    def __init__(self) -> None:
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"billingtest{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.base = Path(tempfile.mkdtemp(prefix="billing-rabbitmq-"))
        self.process: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        # The Debian server script switches to the rabbitmq user; only root may start it.
        return shutil.which("rabbitmq-server") is not None and os.geteuid() == 0

    def start(self) -> None:
        for name in ("mnesia", "log"):
            (self.base / name).mkdir(exist_ok=True)
        (self.base / "enabled_plugins").write_text("[].\n")
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(self.base)], check=True)
        env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq"),
        }
        with (self.base / "server.out").open("ab") as out:
            self.process = subprocess.Popen(
                [shutil.which("rabbitmq-server") or "rabbitmq-server"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with Connection(self.url, connect_timeout=1) as conn:
                    conn.ensure_connection(max_retries=0)
                return
            except Exception:
                time.sleep(0.25)
        raise RuntimeError(
            f"private rabbitmq-server did not start:\n{tail(self.base / 'server.out')}"
        )

    def stop(self) -> None:
        # `su` starts the server in a session of its own, so stopping ours does not reach
        # the Erlang VM: it is found by the node name in its environment, and stopped
        # first (SIGTERM: RabbitMQ shuts down cleanly), then the script and `su`.
        node = self._node_processes()
        for pid in node:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while node and time.monotonic() < deadline:
            node = [pid for pid in node if Path(f"/proc/{pid}").exists()]
            time.sleep(0.1)
        for pid in node:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            stop_process(self.process, timeout=30)
            self.process = None

    def _node_processes(self) -> list[int]:
        wanted = f"RABBITMQ_NODENAME={self.node}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if wanted in environ.split(b"\0"):
                found.append(int(entry.name))
        return found

    def unacked(self) -> int:
        """Messages a consumer has taken and not yet acknowledged, over every queue."""
        listed = subprocess.run(
            [
                "su",
                "rabbitmq",
                "-s",
                "/bin/sh",
                "-c",
                f"rabbitmqctl -q -n {self.node} list_queues messages_unacknowledged",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        return sum(int(word) for word in listed.split() if word.isdigit())


@contextmanager
def publishing_to(url: str) -> Iterator[None]:
    """This process's Celery app publishes to the broker at `url` while inside."""
    from config.celery import app

    previous = app.conf.broker_url
    app.conf.broker_url = url
    # Producers are pooled per broker URL; drop the old pool so publishes go to ours.
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        app.conf.broker_url = previous
        app._pool = None
        app.amqp._producer_pool = None


def celery_process(args: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen:
    """`celery -A config ARGS...` in a session of its own (so it and its pool children can
    be stopped together), its output in `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", *args],
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": CELERY_SETTINGS, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """Stop a process started by `celery_process` and whatever it started: a warm
    shutdown first, then SIGKILL to the whole session."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # pool children left behind, if any
    process.wait(timeout=timeout)


def tail(log: Path, lines: int = 40) -> str:
    if not log.exists():
        return "(no output)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
