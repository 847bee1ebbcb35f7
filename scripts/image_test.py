"""The production image builds and runs: `make image-test` (after scripts/image_test.sh).

Builds the Dockerfile with podman, then runs the image's processes the way
docker-compose.yml runs them, and checks them from outside. podman-compose cannot run the
compose file here (Debian's 1.0.3 passes `${VAR:-}` through literally, ignores the
depends_on conditions, needs the postgres and redis images from a registry and a bridge
network), so the compose file is read instead: every process gets the service's command,
environment, order (depends_on) and health check from it. Only what names the compose
network changes, because here every container shares the host's network:

- a URL whose host is a compose service (db, redis) points at this machine's PostgreSQL
  (a database made for this run) or at a private redis-server on a free port;
- a service that publishes a port (web) listens on 127.0.0.1 and a free port (PORT,
  WEB_BIND_ADDRESS), since port 8000 may be in use.

The `${...}` values come from this run only (never from the shell or a .env): throwaway
secrets, and a Stripe key and URL pointing at localstripe, started here outside the image.
Every container, the Redis, localstripe and the database are removed at the end, also on
failure or Ctrl-C. Apart from the build's downloads (PyPI, Debian), nothing is sent anywhere
but 127.0.0.1. Exits non-zero on any failed check.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import psycopg
import redis
import requests
import yaml
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
IMAGE = "localhost/billing-service:image-test"
BUILDER_IMAGE = "localhost/billing-service-builder:image-test"
LOGS = ROOT / ".run" / "image-test"
LABEL = "billing-service.image-test"
# What the stand-ins are for: compose services the test replaces with host processes.
STAND_INS = ("db", "redis")
# Variables with these in their names hold secrets.
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|DSN|(?:^|_)KEYS?(?:_|$)")


class CheckFailed(Exception):
    pass


class Fatal(CheckFailed):
    """A failure no amount of waiting repairs (a container exited): wait_for stops at once."""


def check(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


# --- output ------------------------------------------------------------------------------
class Steps:
    def __init__(self) -> None:
        self.number = 0
        self.started = time.monotonic()
        self.timings: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def __call__(self, title: str) -> Iterator[None]:
        self.number += 1
        print(f"\n[{self.number}] {title}", flush=True)
        started = time.monotonic()
        try:
            yield
        except BaseException:
            print(f"    FAILED after {time.monotonic() - started:.1f} s", flush=True)
            raise
        elapsed = time.monotonic() - started
        self.timings.append((title, elapsed))
        print(f"    ok ({elapsed:.1f} s)", flush=True)


def saw(message: str) -> None:
    print(f"    {message}", flush=True)


def wait_for(what: str, probe: Callable[[], object], timeout: float, interval: float = 0.5):
    """Calls probe until it returns something true; the last error or value is reported."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except Fatal:
            raise
        except (CheckFailed, requests.RequestException, OSError, redis.RedisError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise CheckFailed(f"{what}: not within {timeout:.0f} s (last: {last})")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- podman --------------------------------------------------------------------------------
def podman_command(*args: str) -> list[str]:
    return ["podman", "--runtime", os.environ["IMAGE_TEST_RUNTIME"], *args]


def podman(*args: str, check_rc: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(  # noqa: S603 (fixed arguments, no shell)
        podman_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check_rc and result.returncode != 0:
        raise CheckFailed(
            f"podman {' '.join(args[:3])}... exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result


# --- compose -------------------------------------------------------------------------------
INTERPOLATION = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_]\w*))")
BRACED = re.compile(r"(?P<name>[A-Za-z_]\w*)(?:(?P<colon>:?)(?P<op>[-?+])(?P<arg>.*))?", re.S)


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
    `${VAR?error}`, `${VAR:+alt}` and `$$`."""

    def substitute(match: re.Match) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("named"):
            return variables.get(match.group("named"), "")
        parsed = BRACED.fullmatch(match.group("braced"))
        check(parsed, f"unsupported interpolation {match.group(0)!r} in {COMPOSE_FILE.name}")
        name, colon, op, arg = parsed.group("name", "colon", "op", "arg")
        is_set = name in variables and (variables[name] != "" or not colon)
        if op is None:
            return variables.get(name, "")
        if op == "-":
            return variables[name] if is_set else interpolate(arg, variables)
        if op == "?":
            check(is_set, f"{COMPOSE_FILE.name} requires {name}: {arg}")
            return variables[name]
        return interpolate(arg, variables) if is_set else ""

    result = INTERPOLATION.sub(substitute, value)
    check("${" not in result, f"nested interpolation in {value!r} is not supported")
    return result


def interpolate_tree(node, variables: dict[str, str]):
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, dict):
        return {key: interpolate_tree(value, variables) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(value, variables) for value in node]
    return node


class Service:
    def __init__(self, name: str, spec: dict) -> None:
        self.name = name
        self.spec = spec
        environment = spec.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment if "=" in item)
        # A key without a value passes the shell's through: nothing, in this test.
        self.environment = {k: str(v) for k, v in environment.items() if v is not None}
        command = spec.get("command")
        self.command = shlex.split(command) if isinstance(command, str) else command or []
        depends = spec.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {name: {"condition": "service_started"} for name in depends}
        self.depends_on = {
            dep: (cond or {}).get("condition", "service_started") for dep, cond in depends.items()
        }
        self.healthcheck = spec.get("healthcheck") or {}
        self.publishes_ports = bool(spec.get("ports"))
        self.stop_grace = duration(spec.get("stop_grace_period", "10s"))

    @property
    def health_test(self) -> list[str] | None:
        if self.healthcheck.get("disable"):
            return None
        test = self.healthcheck.get("test")
        if not test or test == ["NONE"]:
            return None
        if isinstance(test, str):
            return ["/bin/sh", "-c", test]
        kind, *rest = test
        if kind == "CMD-SHELL":
            return ["/bin/sh", "-c", " ".join(rest)]
        check(kind == "CMD", f"{self.name}: unsupported healthcheck test {test!r}")
        return rest


def duration(text: str | int) -> float:
    if isinstance(text, int | float):
        return float(text)
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def load_compose(variables: dict[str, str]) -> tuple[dict[str, Service], dict]:
    """The app services (those built from the Dockerfile) and the build section."""
    document = yaml.safe_load(COMPOSE_FILE.read_text())  # also resolves `<<:` merges
    services = interpolate_tree(document["services"], variables)
    builds = {
        json.dumps(spec["build"], sort_keys=True) for spec in services.values() if "build" in spec
    }
    check(len(builds) == 1, f"expected one build for every app service, found {builds}")
    build = json.loads(builds.pop())
    build = {"context": build} if isinstance(build, str) else build
    unknown = set(build) - {"context", "dockerfile", "args", "target"}
    check(not unknown, f"build options this test does not apply: {unknown}")
    apps = {name: Service(name, spec) for name, spec in services.items() if "build" in spec}
    others = set(services) - set(apps)
    check(
        others <= set(STAND_INS),
        f"compose services without a stand-in here: {others - set(STAND_INS)}",
    )
    return apps, build


def start_order(services: dict[str, Service]) -> list[str]:
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        check(name not in path, f"depends_on cycle: {(*path, name)}")
        if name in order or name not in services:
            return
        for dep in services[name].depends_on:
            visit(dep, (*path, name))
        order.append(name)

    for name in services:
        visit(name, ())
    return order


def point_at_stand_ins(service: Service, stand_ins: dict[str, str]) -> dict[str, str]:
    """The environment, with every URL that names a compose service pointed at its
    stand-in. A stand-in's path (a database name) replaces the original's; without one
    (Redis) the original's path (the database number) is kept."""
    environment = dict(service.environment)
    for key, value in service.environment.items():
        parts = urlsplit(value) if "://" in value else None
        if parts is None or parts.hostname not in STAND_INS:
            continue
        stand_in = urlsplit(stand_ins[parts.hostname])
        path = stand_in.path if stand_in.path not in ("", "/") else parts.path
        environment[key] = urlunsplit((parts.scheme, stand_in.netloc, path, parts.query, ""))
    return environment


# --- the run -------------------------------------------------------------------------------
class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.id = secrets.token_hex(4)
        self.steps = Steps()
        self.logs = LOGS / self.id
        self.database = f"billing_image_test_{self.id}"
        self.admin_url = args.postgres_url
        self.redis_port = free_port()
        self.stripe_port = free_port()
        self.web_port = free_port()
        self.stripe_url = f"http://127.0.0.1:{self.stripe_port}"
        # Throwaway values, the way an operator puts them in .env for compose.
        self.variables = {
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(16),
            "STRIPE_API_BASE": self.stripe_url,
            "STRIPE_ACCOUNT_ID": "acct_localstripe",
            "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(16),
        }
        self.secrets = [v for k, v in self.variables.items() if SECRET_NAME.search(k)]
        self.processes: dict[str, subprocess.Popen] = {}
        self.containers: dict[str, tuple[subprocess.Popen, Service]] = {}
        self.database_created = False
        self.image_id = ""
        self.http = requests.Session()
        self.http.trust_env = False  # no proxy from the environment: 127.0.0.1 only
        self.api_key = ""

    # helpers
    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.api_key}", **kwargs.pop("headers", {})}
        return self.http.request(
            method, self.url(f"/api/v1/{path}"), headers=headers, timeout=15, **kwargs
        )

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def json_lines(self, name: str) -> list[dict]:
        lines = []
        for line in self.log(name).read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    lines.append(json.loads(line))
        return lines

    def spawn(self, name: str, command: list[str], **kwargs) -> subprocess.Popen:
        with self.log(name).open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 (fixed arguments, no shell)
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kwargs
            )
        self.processes[name] = process
        return process

    def container_name(self, service: str) -> str:
        return f"billing-it-{self.id}-{service}"

    def run_args(self, service: Service, environment: dict[str, str]) -> list[str]:
        env_file = self.logs / f"{service.name}.env"
        env_file.touch(mode=0o600)
        env_file.write_text("".join(f"{k}={v}\n" for k, v in environment.items()))
        return [
            "--rm",
            "--network", "host",
            "--http-proxy=false",
            "--label", f"{LABEL}={self.id}",
            "--env-file", str(env_file),
        ]  # fmt: skip

    def environment(self, service: Service) -> dict[str, str]:
        environment = point_at_stand_ins(
            service,
            {
                "db": f"{self.admin_url.rstrip('/')}/{self.database}",
                "redis": f"redis://127.0.0.1:{self.redis_port}",
            },
        )
        if service.publishes_ports:
            environment |= {"PORT": str(self.web_port), "WEB_BIND_ADDRESS": "127.0.0.1"}
        return environment

    # steps
    def build(self, build: dict) -> None:
        with self.steps("Build the image with podman (../shared/CONTAINERS.md)"):
            context = ROOT / build.get("context", ".")
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            common = [
                "build",
                "--format", "docker",  # keeps HEALTHCHECK
                "--network", "host",
                "--build-arg", f"PYTHON_IMAGE={os.environ['IMAGE_TEST_BASE_IMAGE']}",
                "-f", str(dockerfile),
            ]  # fmt: skip
            for key, value in (build.get("args") or {}).items():
                common += ["--build-arg", f"{key}={value}"]
            # The builder stage installs requirements.txt from the registries, so it alone
            # gets this machine's pip configuration and CA bundle, mounted, never copied.
            # The full build then reuses that stage from the layer cache (podman's cache
            # ignores mounts), and its runtime stage runs without them: a mount point left
            # by a RUN (an empty /etc/pip.conf) cannot end up in the image.
            mounts = []
            for path in self.args.build_mount:
                mounts += ["-v", f"{path}:{path}:ro"]
            started = time.monotonic()
            with self.log("build").open("wb") as out:
                builder = subprocess.run(  # noqa: S603
                    podman_command(
                        *common, *mounts, "--target", "builder", "-t", BUILDER_IMAGE, str(context)
                    ),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=1200,
                )
            check(
                builder.returncode == 0,
                f"builder stage failed: see {self.log('build')}\n{self.tail('build')}",
            )
            saw(
                "builder stage (pip install of requirements.txt): "
                f"{time.monotonic() - started:.1f} s"
            )
            iid = self.logs / "image.id"
            target = ["--target", build["target"]] if build.get("target") else []
            runtime_started = time.monotonic()
            with self.log("build").open("ab") as out:
                full = subprocess.run(  # noqa: S603
                    podman_command(
                        *common, *target, "--iidfile", str(iid), "-t", IMAGE, str(context)
                    ),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=1200,
                )
            check(
                full.returncode == 0, f"build failed: see {self.log('build')}\n{self.tail('build')}"
            )
            self.image_id = iid.read_text().strip().removeprefix("sha256:")
            self.build_seconds = time.monotonic() - started
            size = podman("image", "inspect", self.image_id, "--format", "{{.Size}}").stdout.strip()
            saw(f"runtime stage: {time.monotonic() - runtime_started:.1f} s")
            saw(
                f"built {IMAGE} ({self.image_id[:12]}, {int(size) / 1e6:.0f} MB) "
                f"in {self.build_seconds:.1f} s"
            )

    def start_stand_ins(self) -> None:
        with self.steps("Stand-ins outside the image: database, private Redis, localstripe"):
            with psycopg.connect(f"{self.admin_url.rstrip('/')}/postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.database}"')
            self.database_created = True
            saw(f"PostgreSQL: database {self.database} on {urlsplit(self.admin_url).netloc}")
            self.spawn(
                "redis",
                [
                    shutil.which("redis-server") or "redis-server",
                    "--port", str(self.redis_port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                ],
            )  # fmt: skip
            client = redis.Redis(port=self.redis_port)
            wait_for("private redis-server", client.ping, timeout=15, interval=0.1)
            saw(f"Redis: private redis-server on 127.0.0.1:{self.redis_port}")
            self.spawn(
                "localstripe",
                [
                    sys.executable, "-m", "tests.fakes.localstripe_server",
                    "--port", str(self.stripe_port),
                    "--state", str(self.logs / "localstripe.pickle"),
                ],
                cwd=ROOT,
            )  # fmt: skip
            wait_for("localstripe", lambda: self.stripe("GET", "customers").ok, timeout=30)
            saw(f"Stripe emulator: localstripe on {self.stripe_url}")

    def stripe(self, method: str, path: str, **kwargs) -> requests.Response:
        key = self.variables["STRIPE_SECRET_KEY"]
        return self.http.request(
            method,
            f"{self.stripe_url}/v1/{path}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
            **kwargs,
        )

    def start_services(self, services: dict[str, Service]) -> None:
        one_shots = {
            dep
            for s in services.values()
            for dep, cond in s.depends_on.items()
            if cond == "service_completed_successfully"
        }
        for name in start_order(services):
            service = services[name]
            for dep, condition in service.depends_on.items():
                if dep in services and condition == "service_healthy":
                    self.wait_healthy(services[dep], timeout=120)
            environment = self.environment(service)
            args = self.run_args(service, environment)
            container = self.container_name(name)
            command = podman_command(
                "run", *args, "--name", container, self.image_id, *service.command
            )
            shown = " ".join(service.command) or "(the image's CMD: gunicorn)"
            if name in one_shots:
                with self.steps(
                    f"{name}: {shown} (runs to completion, as compose's depends_on asks)"
                ):
                    process = self.spawn(name, command)
                    try:
                        rc = process.wait(timeout=600)
                    except subprocess.TimeoutExpired:
                        raise CheckFailed(f"{name} did not finish in 10 min") from None
                    check(rc == 0, f"{name} exited {rc}:\n{self.tail(name)}")
                    saw(f"exited 0; last line: {self.tail(name, 1).strip()}")
            else:
                with self.steps(f"{name}: {shown} (started)"):
                    self.containers[name] = (self.spawn(name, command), service)
                    overrides = sorted(
                        k for k in environment if environment[k] != service.environment.get(k)
                    )
                    saw(
                        f"container {container}; changed from compose: "
                        f"{', '.join(overrides) or 'nothing'}"
                    )

    def wait_healthy(self, service: Service, timeout: float) -> None:
        test = service.health_test
        if test is None:
            return
        container = self.container_name(service.name)

        def healthy() -> bool:
            self.running()
            return podman("exec", container, *test, check_rc=False, timeout=60).returncode == 0

        wait_for(
            f"{service.name} healthy (compose healthcheck)", healthy, timeout=timeout, interval=1
        )

    def running(self, *names: str) -> None:
        """Fails at once if a container (of those named, or any) has exited."""
        for name, (process, _) in self.containers.items():
            if names and name not in names:
                continue
            if process.poll() is not None:
                raise Fatal(f"{name} exited {process.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 25) -> str:
        try:
            return "\n".join(self.log(name).read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def check_health(self) -> None:
        with self.steps("Health: /health/live/, /health/ready/, compose and image health checks"):
            # Web alone first: its readiness names a broken dependency better than a
            # worker's exit status does.
            def live() -> bool:
                self.running(self.web_name)
                return self.http.get(self.url("/health/live/"), timeout=5).status_code == 200

            wait_for("web answers /health/live/", live, timeout=90)
            ready = self.http.get(self.url("/health/ready/"), timeout=10)
            saw(f"GET /health/ready/ -> {ready.status_code} {ready.text}")
            check(ready.status_code == 200, f"/health/ready/ -> {ready.status_code} {ready.text}")
            check(
                set(ready.json()["checks"].values()) == {"ok"}, "every readiness check must be ok"
            )
            self.running()
            for name, (_, service) in self.containers.items():
                if service.health_test is not None:
                    self.wait_healthy(service, timeout=90)
                    saw(
                        f"{name}: compose healthcheck passes "
                        f"({' '.join(service.health_test)[:70]}...)"
                    )
            web = self.web_name
            result = podman(
                "healthcheck", "run", self.container_name(web), check_rc=False, timeout=60
            )
            check(
                result.returncode == 0,
                f"image HEALTHCHECK of {web}: {result.stdout}{result.stderr}",
            )
            saw(f"{web}: the image's HEALTHCHECK passes (podman healthcheck run)")
            metrics = self.http.get(self.url("/metrics"), timeout=10)
            check(
                metrics.status_code == 200 and "# TYPE" in metrics.text,
                f"/metrics: {metrics.status_code}",
            )
            saw("GET /metrics -> 200 (Prometheus text, multiprocess directory writable)")

    def check_user(self) -> None:
        with self.steps(
            "Every process runs as the image's unprivileged user; the code is read-only to it"
        ):
            user = podman(
                "image", "inspect", self.image_id, "--format", "{{.Config.User}}"
            ).stdout.strip()
            uid = int(user.split(":")[0])
            check(uid != 0, f"image USER is {user!r}")
            script = (
                "import json, os\n"
                "out = []\n"
                "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
                "    try:\n"
                "        lines = open(f'/proc/{pid}/status').read().splitlines()\n"
                "        status = dict(l.split(':', 1) for l in lines if ':' in l)\n"
                "        cmd = open(f'/proc/{pid}/cmdline', 'rb').read()\n"
                "        cmd = cmd.replace(b'\\0', b' ').decode()\n"
                "    except OSError:\n"
                "        continue\n"
                "    out.append([pid, status['Uid'].split(), cmd.strip()[:60]])\n"
                "print(json.dumps({'procs': out, 'writable': [p for p in ('/app', '/app/manage.py',"
                " '/app/staticfiles', '/opt/venv') if os.access(p, os.W_OK)]}))\n"
            )
            for name in self.containers:
                result = podman("exec", self.container_name(name), "python", "-c", script)
                found = json.loads(result.stdout)
                procs = [p for p in found["procs"] if "import json, os" not in p[2]]
                check(procs, f"{name}: no process seen")
                for pid, uids, cmd in procs:
                    check(
                        set(map(int, uids)) == {uid},
                        f"{name}: pid {pid} ({cmd}) has uids {uids}, not {uid}",
                    )
                check(not found["writable"], f"{name}: the app user can write {found['writable']}")
                main = next((p for p in procs if p[0] == "1"), procs[0])
                saw(
                    f"{name}: {len(procs)} process(es), all uid {uid} (pid 1: {main[2]}); "
                    "/app read-only"
                )

    def check_imports(self) -> None:
        with self.steps(
            "scripts/requirements_check.py inside the image (its venv, its system libraries)"
        ):
            # The same check as `make requirements-check`, with the image's own venv and
            # system packages (WeasyPrint loads Pango when imported): mounted, not copied.
            script = ROOT / "scripts" / "requirements_check.py"
            result = podman(
                "run", "--rm", "--network", "none",
                "--label", f"{LABEL}={self.id}",
                "-v", f"{script}:/app/scripts/requirements_check.py:ro",
                self.image_id, "python", "-I", "scripts/requirements_check.py",
                check_rc=False, timeout=300,
            )  # fmt: skip
            output = result.stdout.strip().splitlines()
            check(result.returncode == 0, "\n".join(output[-15:]) + result.stderr[-2000:])
            for line in output:
                if line.startswith(("  broker transport", "  own module", "  imported by", "OK")):
                    saw(line.strip())

    def create_api_key(self, services: dict[str, Service]) -> None:
        # As the compose file's header says: `docker compose run --rm web python manage.py ...`
        web = next(s for s in services.values() if s.publishes_ports)
        with self.steps(f"create_api_key in the image (compose run {web.name})"):
            name = f"image-test-{self.id}"
            args = self.run_args(web, self.environment(web))
            result = podman(
                "run", *args, "--name", self.container_name("create-api-key"), self.image_id,
                "python", "manage.py", "create_api_key", name, timeout=180,
            )  # fmt: skip
            self.api_key = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
            check(self.api_key, f"no key printed: {result.stderr[-2000:]}")
            saw(f"stderr: {result.stderr.strip().splitlines()[-1]}")
            self.secrets.append(self.api_key)
            response = self.api("GET", "customers/")
            check(
                response.status_code == 200,
                f"GET /api/v1/customers/ with the key: {response.status_code}",
            )
            anonymous = self.http.get(self.url("/api/v1/customers/"), timeout=10)
            check(
                anonymous.status_code == 401,
                f"without a key: {anonymous.status_code}, expected 401",
            )
            saw("the key authenticates (200); no key is refused (401)")

    def check_customer_reaches_stripe(self) -> None:
        with self.steps(
            "A customer created through the API reaches localstripe (outbox -> broker -> worker)"
        ):
            registered = self.http.post(
                f"{self.stripe_url}/_config/webhooks/image-test",
                data={
                    "url": self.url("/webhooks/stripe/"),
                    "secret": self.variables["STRIPE_WEBHOOK_SECRET"],
                },
                timeout=10,
            )
            check(registered.ok, f"localstripe webhook registration: {registered.status_code}")
            external_id = f"image-test-{self.id}"
            email = f"{external_id}@example.com"
            created = self.api(
                "POST",
                "customers/",
                json={
                    "external_id": external_id,
                    "name": "Image Test",
                    "email": email,
                    "currency": "USD",
                },
                headers={"Idempotency-Key": f"image-test-{self.id}"},
            )
            check(
                created.status_code == 201,
                f"POST /customers/: {created.status_code} {created.text[:500]}",
            )
            started = time.monotonic()

            def synced():
                self.running()
                body = self.api("GET", f"customers/{external_id}/").json()
                stripe = body["sync"]["stripe"]
                if stripe["status"] not in ("pending", "synced"):
                    raise Fatal(f"Stripe sync: {stripe}")
                return body if stripe["status"] == "synced" else None

            body = wait_for("customer synced to Stripe", synced, timeout=60)
            stripe_id = body["stripe_customer_id"]
            saw(
                "POST /api/v1/customers/ -> 201; sync.stripe synced after "
                f"{time.monotonic() - started:.1f} s"
            )
            remote = self.stripe("GET", f"customers/{stripe_id}")
            check(remote.ok, f"localstripe GET /v1/customers/{stripe_id}: {remote.status_code}")
            check(remote.json().get("email") == email, f"localstripe has {remote.json()}")
            listed = [c["id"] for c in self.stripe("GET", "customers").json()["data"]]
            check(
                stripe_id in listed, f"{stripe_id} not in localstripe's GET /v1/customers {listed}"
            )
            saw(f"localstripe GET /v1/customers lists {stripe_id} with email {email}")
            wait_for(
                "worker logs 'outbox message processed'",
                lambda: any(
                    r.get("message") == "outbox message processed" for r in self.worker_log()
                ),
                timeout=20,
            )
            saw("worker: 'outbox message processed'")
            wait_for(
                "localstripe's webhook processed by the worker",
                lambda: any(r.get("message") == "webhook processed" for r in self.worker_log()),
                timeout=30,
            )
            access = [
                line
                for line in self.log(self.web_name).read_text().splitlines()
                if "/webhooks/stripe/" in line
            ]
            check(access, "no POST /webhooks/stripe/ in the web container's access log")
            saw(f"webhook: localstripe -> {access[-1].split('] ')[-1][:60]}")
            saw("worker: 'webhook processed'")

    @property
    def web_name(self) -> str:
        return next(n for n, (_, s) in self.containers.items() if s.publishes_ports)

    def worker_log(self) -> list[dict]:
        return [r for n in self.containers if n != self.web_name for r in self.json_lines(n)]

    def check_usage(self) -> None:
        with self.steps("A usage event is stored (metric, plan, subscription, POST /usage/)"):
            tag = self.id
            requests_ = [
                (
                    "billable_metrics/",
                    {"code": f"calls_{tag}", "name": "Calls", "aggregation": "count"},
                ),
                (
                    "plans/",
                    {
                        "code": f"plan_{tag}",
                        "name": "Image test plan",
                        "interval": "monthly",
                        "amount_cents": 1000,
                        "currency": "USD",
                        "charges": [
                            {
                                "metric": f"calls_{tag}",
                                "model": "standard",
                                "properties": {"amount": "0.01"},
                            }
                        ],
                    },
                ),
                (
                    "subscriptions/",
                    {
                        "external_id": f"sub_{tag}",
                        "customer": f"image-test-{tag}",
                        "plan": f"plan_{tag}",
                    },
                ),
                (
                    "usage/",
                    {
                        "transaction_id": f"tx_{tag}",
                        "subscription": f"sub_{tag}",
                        "metric": f"calls_{tag}",
                    },
                ),
            ]
            for path, payload in requests_:
                response = self.api("POST", path, json=payload)
                check(
                    response.status_code == 201,
                    f"POST /api/v1/{path}: {response.status_code} {response.text[:500]}",
                )
            saw("POST billable_metrics, plans, subscriptions, usage -> 201 each")
            stored = self.api("GET", f"usage/?subscription=sub_{tag}").json()["results"]
            check([r["transaction_id"] for r in stored] == [f"tx_{tag}"], f"GET /usage/: {stored}")
            usage = self.api("GET", f"subscriptions/sub_{tag}/usage/").json()
            units = {m["metric"]: m["units"] for m in usage["metrics"]}
            check(float(units.get(f"calls_{tag}", 0)) == 1, f"aggregate: {usage}")
            saw(
                f"GET /usage/ lists tx_{tag}; "
                f"the period's aggregate counts {units[f'calls_{tag}']} unit"
            )

    def check_pages(self) -> None:
        with self.steps("Admin login page and /api/docs/ load, with their static files"):
            for path in ("/admin/login/", "/api/docs/"):
                page = self.http.get(self.url(path), timeout=15)
                check(page.status_code == 200, f"GET {path}: {page.status_code}")
                assets = static_references(page.text, page.url)
                check(assets, f"{path} references no static file")
                for asset in assets:
                    check(
                        urlsplit(asset).hostname == "127.0.0.1",
                        f"{path} loads {asset} from elsewhere (a CDN?)",
                    )
                    response = self.http.get(asset, timeout=15)
                    check(
                        response.status_code == 200 and response.content,
                        f"{path}: {asset} -> {response.status_code}, {len(response.content)} bytes",
                    )
                    hashed = re.search(r"\.[0-9a-f]{12}\.\w+$", urlsplit(asset).path)
                    check(hashed, f"{path}: {asset} is not a name from collectstatic's manifest")
                saw(
                    f"GET {path} -> 200; its {len(assets)} static files (hashed names) "
                    "-> 200 from the service"
                )
            schema = self.http.get(self.url("/api/schema/"), timeout=30)
            check(
                schema.status_code == 200 and "openapi:" in schema.text,
                f"/api/schema/: {schema.status_code}",
            )
            saw(f"GET /api/schema/ -> 200 ({len(schema.content)} bytes of OpenAPI)")

    def check_beat(self) -> None:
        with self.steps("Beat sends its periodic tasks, the worker runs them"):
            beat = [
                n for n, (_, s) in self.containers.items() if " beat" in f" {' '.join(s.command)}"
            ]
            check(beat, "no beat service in the compose file")
            sent_pattern = re.compile(r"Scheduler: Sending due task \S+ \((\S+)\)")
            done_pattern = re.compile(r"Task (\S+)\[\S+\] succeeded")

            def ran() -> list[str]:
                """Tasks beat sent that the worker then ran successfully."""
                self.running()
                sent = {
                    match.group(1)
                    for record in self.json_lines(beat[0])
                    if (match := sent_pattern.match(record.get("message", "")))
                }
                done = {
                    match.group(1)
                    for record in self.worker_log()
                    if (match := done_pattern.match(record.get("message", "")))
                }
                return sorted(sent & done)

            tasks = wait_for("a task sent by beat succeeds in the worker", ran, timeout=90)
            saw(f"{beat[0]} sent, and the worker ran: {', '.join(tasks)}")

    def check_no_secrets(self, services: dict[str, Service]) -> None:
        with self.steps(
            "No secret or build-only value in the image (podman inspect, podman history)"
        ):
            inspect = podman("image", "inspect", self.image_id).stdout
            history = podman(
                "history", "--no-trunc", "--format", "{{.CreatedBy}}", self.image_id
            ).stdout
            config = json.loads(inspect)[0]["Config"]
            for value in self.secrets:
                check(
                    value not in inspect and value not in history,
                    "a runtime secret of this run is in the image's metadata",
                )
            saw(
                f"none of this run's {len(self.secrets)} secrets (keys, Stripe key, webhook "
                "secret, API key) in inspect or history"
            )
            env = dict(item.split("=", 1) for item in config.get("Env", []))
            deployment = {k for s in services.values() for k in s.environment}
            baked = sorted((set(env) & deployment) | {k for k in env if SECRET_NAME.search(k)})
            check(not baked, f"the image's Env sets deployment settings or secrets: {baked}")
            labels = config.get("Labels") or {}
            check(all(not SECRET_NAME.search(k) for k in labels), f"labels: {labels}")
            saw(f"Config.Env is {sorted(env)}; Labels {sorted(labels)}")
            check("build-only" not in inspect + history, "'build-only' is in the image's metadata")
            literal = re.findall(r"\b([A-Z][A-Z0-9_]*)=(?![\"']?\$\()(\S+)", history)
            leaked = [f"{k}={v[:12]}..." for k, v in literal if SECRET_NAME.search(k)]
            check(not leaked, f"podman history records a secret's value: {leaked}")
            saw(
                "history: no secret assigned a literal value "
                "(the build's keys are made inside the RUN)"
            )

    def check_image_files(self) -> None:
        with self.steps(
            "No .env and none of the build's mounted pip config or CA bundle in the image"
        ):
            targets = {}
            for path in self.args.build_mount:
                data = Path(path).read_bytes()
                targets[path] = [len(data), hashlib.sha256(data).hexdigest()]
            script = (
                "import hashlib, json, os, sys\n"
                "targets = json.loads(sys.argv[1])\n"
                "sizes = {size for size, _ in targets.values()}\n"
                "digests = {digest for _, digest in targets.values()}\n"
                "def digest(p):\n"
                "    try:\n"
                "        return hashlib.sha256(open(p, 'rb').read()).hexdigest()\n"
                "    except OSError:\n"
                "        return None\n"
                "found = {'paths': {p: digest(p) for p in targets}, 'copies': [], 'dotenv': []}\n"
                "for top in os.listdir('/'):\n"
                "    if top in ('proc', 'sys', 'dev', 'run'):\n"
                "        continue\n"
                "    for d, dirs, files in os.walk('/' + top):\n"
                "        for f in files:\n"
                "            p = os.path.join(d, f)\n"
                "            if f == '.env' or f.startswith('.env.'):\n"
                "                found['dotenv'].append(p)\n"
                "            try:\n"
                "                if os.path.islink(p) or os.path.getsize(p) not in sizes:\n"
                "                    continue\n"
                "            except OSError:\n"
                "                continue\n"
                "            if digest(p) in digests:\n"
                "                found['copies'].append(p)\n"
                "print(json.dumps(found))\n"
            )
            scanned = {}
            for label, image in (
                ("base", os.environ["IMAGE_TEST_BASE_IMAGE"]),
                ("image", self.image_id),
            ):
                result = podman(
                    "run", "--rm", "--network", "none", "--user", "0",
                    "--entrypoint", "python3", "--label", f"{LABEL}={self.id}",
                    image, "-c", script, json.dumps(targets), timeout=180,
                )  # fmt: skip
                scanned[label] = json.loads(result.stdout)
            base, image = scanned["base"], scanned["image"]
            check(not image["dotenv"], f".env files in the image: {image['dotenv']}")
            saw("no .env or .env.* file anywhere in the image")
            for path in targets:
                check(
                    image["paths"][path] == base["paths"][path],
                    f"{path} differs from the base image's "
                    f"({base['paths'][path]} -> {image['paths'][path]})",
                )
                state = (
                    "absent, as in the base"
                    if image["paths"][path] is None
                    else "the base image's own"
                )
                saw(f"{path}: {state}")
            copies = sorted(set(image["copies"]) - set(base["copies"]))
            check(not copies, f"copies of a build mount in the image: {copies}")
            saw(
                "no file in the image has the content of a build mount "
                f"({len(targets)} files compared)"
            )

    def cleanup(self) -> None:
        print("\nCleaning up", flush=True)
        for name, (process, service) in reversed(list(self.containers.items())):
            if process.poll() is None:
                podman(
                    "stop",
                    "-t",
                    str(int(service.stop_grace)),
                    self.container_name(name),
                    check_rc=False,
                    timeout=service.stop_grace + 30,
                )
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        leftovers = podman(
            "ps", "-aq", "--filter", f"label={LABEL}={self.id}", check_rc=False
        ).stdout.split()
        if leftovers:
            podman("rm", "-f", *leftovers, check_rc=False)
        for name in ("localstripe", "redis"):
            process = self.processes.get(name)
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        if self.database_created:
            try:
                with psycopg.connect(
                    f"{self.admin_url.rstrip('/')}/postgres", autocommit=True
                ) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            except psycopg.Error as exc:
                print(f"    could not drop {self.database}: {exc}", flush=True)
        for env_file in self.logs.glob("*.env"):
            env_file.unlink()
        remaining = podman(
            "ps", "-aq", "--filter", f"label={LABEL}={self.id}", check_rc=False
        ).stdout.split()
        print(
            f"    containers left: {len(remaining)}; Redis and localstripe stopped; "
            f"database {self.database} dropped"
            f"\n    logs: {self.logs}",
            flush=True,
        )


class _StaticRefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("href", "src") and value and "/static/" in value:
                self.found.append(value)


def static_references(html: str, base: str) -> list[str]:
    parser = _StaticRefs()
    parser.feed(html)
    return sorted({urljoin(base, ref) for ref in parser.found})


def build_mounts() -> list[str]:
    """What pip needs from this machine to reach the registries (../shared/CONTAINERS.md,
    step 4): the pip configuration files `pip config debug` lists as existing (global and
    site ones), the files they name (a constraints file), and the CA bundle of
    `pip config list`'s global.cert."""
    debug = subprocess.run(
        [sys.executable, "-m", "pip", "config", "debug"], capture_output=True, text=True, check=True
    ).stdout
    files: list[str] = []
    section = None
    for line in debug.splitlines():
        if re.match(r"^\S+:$", line):
            section = line[:-1]
        match = re.match(r"^\s+(\S+), exists: True$", line)
        if match and section in ("global", "site"):
            files.append(match.group(1))
        named = re.match(r"^\s+global\.(cert|constraint|requirement)s?:\s*(\S+)$", line)
        if named and section in ("global", "site"):
            files.append(named.group(2))
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True
    ).stdout
    for line in listed.splitlines():
        match = re.match(r"^global\.cert='(.+)'$", line)
        if match:
            files.append(match.group(1))
    return sorted({f for f in files if Path(f).is_file()})


def terminated(signum, frame) -> None:
    """SIGTERM (CI cancelling the job) cleans up like Ctrl-C."""
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("IMAGE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"),
        help="server (no database) where a database is made for the run and dropped after",
    )
    args = parser.parse_args()
    for variable in ("IMAGE_TEST_RUNTIME", "IMAGE_TEST_BASE_IMAGE", "CONTAINERS_CONF"):
        if not os.environ.get(variable):
            print(f"{variable} is not set: run `make image-test` (scripts/image_test.sh)")
            return 2
    check(
        urlsplit(args.postgres_url).hostname in ("127.0.0.1", "localhost"),
        "PostgreSQL must be local",
    )
    args.build_mount = build_mounts()

    LOGS.mkdir(parents=True, exist_ok=True)
    for old in LOGS.iterdir():  # earlier runs' logs, after a day
        if old.is_dir() and time.time() - old.stat().st_mtime > 86400:
            shutil.rmtree(old, ignore_errors=True)
    run = Run(args)
    run.logs.mkdir()
    signal.signal(signal.SIGTERM, terminated)
    print(f"image test {run.id}: {IMAGE} from {ROOT}")
    print(f"build mounts (builder stage only): {', '.join(args.build_mount) or 'none'}")
    failed: BaseException | None = None
    try:
        services, build = load_compose(run.variables)
        print(
            f"compose services: {', '.join(start_order(services))} "
            f"(stand-ins: {', '.join(STAND_INS)})",
            flush=True,
        )
        run.build(build)
        run.start_stand_ins()
        run.start_services(services)
        run.check_health()
        run.check_user()
        run.check_imports()
        run.create_api_key(services)
        run.check_customer_reaches_stripe()
        run.check_usage()
        run.check_pages()
        run.check_beat()
        run.check_no_secrets(services)
        run.check_image_files()
    except (Exception, KeyboardInterrupt) as exc:
        failed = exc
    finally:
        if failed is not None:
            for name in run.containers:
                print(f"\n--- last lines of {name} ({run.log(name)}) ---\n{run.tail(name, 15)}")
        run.cleanup()
    total = time.monotonic() - run.steps.started
    print("\nTimings:")
    for title, seconds in run.steps.timings:
        print(f"  {seconds:6.1f} s  {title}")
    if failed is not None:
        kind = "" if isinstance(failed, CheckFailed) else f"{type(failed).__name__}: "
        print(f"\nIMAGE TEST FAILED ({total:.0f} s): {kind}{failed}")
        return 1
    print(f"\nIMAGE TEST PASSED in {total:.0f} s (build {run.build_seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
