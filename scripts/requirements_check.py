"""Checks that requirements.txt alone runs the service (`make requirements-check`).

scripts/requirements_check.sh runs this with the interpreter of a fresh venv that holds
requirements.txt and nothing else (no test or lint tools, which pull in packages of their
own), under the production settings with throwaway values. Nothing here connects to
anything. It imports, collecting every failure rather than stopping at the first:

- every app of INSTALLED_APPS; the project's own apps (and `config`) module by module, and
  every module their source imports, also inside functions (weasyprint, sentry_sdk);
  other apps' models, admin, tasks and signals modules;
- every dotted path in the settings (middleware, storages, cache client, DRF classes,
  logging formatters, beat scheduler...), since Django and Celery load those by name;
- the Celery app, the tasks it autodiscovers, and the broker transport its URL selects,
  instantiated without connecting (kombu loads it by URL scheme at run time);
- the database backend, cache and storage backends, the template engines, and the
  gunicorn and celery commands the image runs.

The lists come from the settings and the source at run time, so apps added, split or
renamed are covered without editing this file.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.metadata
import importlib.util
import os
import pkgutil
import re
import secrets
import sys
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?::[A-Za-z_]\w*)?$")


class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.counts: dict[str, int] = {}

    def attempt(self, category: str, name: str, action) -> None:
        self.counts[category] = self.counts.get(category, 0) + 1
        try:
            action()
        except Exception as exc:
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            frames = [
                f
                for f in traceback.extract_tb(exc.__traceback__)
                if not f.filename.startswith("<frozen")
                and Path(f.filename).parent.name != "importlib"
            ]
            where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
            self.failures.append(f"{category}: {name}: {detail}{where}")


def production_environment() -> None:
    """Throwaway values the production settings insist on; nothing is ever reached."""
    from cryptography.fernet import Fernet

    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DATABASE_URL="postgres://requirements-check@requirements-check.invalid:5432/none",
        DJANGO_ALLOWED_HOSTS="requirements-check.invalid",
        REDIS_URL="redis://requirements-check.invalid:6379/0",
        CELERY_BROKER_URL="redis://requirements-check.invalid:6379/0",
        LOG_LEVEL="WARNING",
    )
    # WhiteNoise warns that collectstatic has not run: irrelevant to imports.
    warnings.filterwarnings("ignore", "No directory at", UserWarning)


def is_local(path: str | Path) -> bool:
    """The project's own code: under the repository, not in the venv."""
    resolved = Path(path).resolve()
    return resolved.is_relative_to(ROOT) and not resolved.is_relative_to(Path(sys.prefix))


def walk(package: str, skip: tuple[str, ...] = ()) -> Iterator[str]:
    """The package and all its submodules, found on disk (importing only packages)."""
    yield package
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(getattr(module, "__path__", []), prefix=package + "."):
        if info.name.startswith(skip):
            continue
        if info.ispkg:
            yield from walk(info.name, skip)
        else:
            yield info.name


def catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = {"ImportError", "ModuleNotFoundError"}
    kind = handler.type
    if kind is None:
        return True
    found = {n.id for n in ast.walk(kind) if isinstance(n, ast.Name)}
    return bool(found & names)


def source_imports(path: Path) -> set[str]:
    """Absolute modules a file imports anywhere (also inside functions), except those in
    a `try` that handles ImportError (optional by design)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    optional: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(catches_import_error(h) for h in node.handlers):
            for child in node.body:
                optional.update(id(n) for n in ast.walk(child))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def resolve(dotted: str) -> None:
    """Imports `pkg.module.Attr.attr` or `pkg.module:Attr`, whatever the split."""
    module_path, _, attribute = dotted.partition(":")
    parts = module_path.split(".")
    for cut in range(len(parts), 0, -1):
        name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # Only "this very module does not exist" means: try a shorter module path.
            if exc.name is not None and name.startswith(exc.name) and cut > 1:
                continue
            raise
        for attr in [*parts[cut:], *([attribute] if attribute else [])]:
            obj = getattr(obj, attr)
        return
    raise ModuleNotFoundError(dotted)


def path(dotted: str) -> None:
    """A settings string that names a module or attribute must import. One that imports
    its package but names no attribute of it is something else (a logger's name)."""
    with contextlib.suppress(AttributeError):
        resolve(dotted)


def setting_paths(value, where: str) -> Iterator[tuple[str, str]]:
    """Strings in the settings that name an importable package's module or attribute."""
    if isinstance(value, str):
        # A lazy translation (django-axes' lockout messages) passes for a str but is text,
        # never a path, and re.match refuses it.
        if type(value) is str and DOTTED.match(value):
            top = value.split(".")[0].split(":")[0]
            if importlib.util.find_spec(top) is not None:
                yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from setting_paths(item, f"{where}[{key!r}]")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from setting_paths(item, f"{where}[{index}]")


def main() -> int:
    try:
        importlib.metadata.distribution("pytest")
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        print(f"{sys.prefix} has pytest: run this in a venv with requirements.txt only")
        return 2
    production_environment()
    report = Report()

    import django

    report.attempt("django.setup", "config.settings.production", django.setup)
    if report.failures:
        print("\n".join(report.failures))
        return 1

    from django.apps import apps
    from django.conf import settings

    local_packages = ["config"]
    for config in apps.get_app_configs():
        report.attempt("app", config.name, lambda name=config.name: importlib.import_module(name))
        if is_local(config.path):
            local_packages.append(config.name)
            continue
        for sub in ("models", "admin", "tasks", "signals"):
            name = f"{config.name}.{sub}"
            if importlib.util.find_spec(name) is not None:
                report.attempt("app module", name, lambda name=name: importlib.import_module(name))

    # The project's own modules, and whatever their source imports (lazy imports too).
    # Settings modules other than production's are for other environments.
    own_modules: list[str] = []
    for package in local_packages:
        skip = ("config.settings.",) if package == "config" else ()
        report.attempt("walk", package, lambda p=package, s=skip: own_modules.extend(walk(p, s)))
    own_modules.append("config.settings.production")
    imported: set[str] = set()
    # Once each: an app inside another (billing.sync in billing) is walked by both.
    for name in dict.fromkeys(own_modules):
        report.attempt("own module", name, lambda name=name: importlib.import_module(name))
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            imported |= source_imports(Path(spec.origin))
    imported |= source_imports(ROOT / "manage.py")
    for name in sorted(imported):
        report.attempt("imported by the source", name, lambda n=name: importlib.import_module(n))

    for setting in dir(settings):
        if setting.isupper():
            for where, dotted in setting_paths(getattr(settings, setting), setting):
                report.attempt("settings path", f"{where} = {dotted}", lambda d=dotted: path(d))

    # Celery: the app, its tasks, and the broker transport chosen by the URL's scheme.
    def celery() -> None:
        from celery.utils.imports import symbol_by_name

        from config.celery import app

        app.loader.import_default_modules()
        app.finalize()
        with app.connection_for_write() as connection:
            transport = connection.transport  # instantiated, not connected
            importlib.import_module(type(transport).__module__)
            print(
                f"  broker transport: {type(transport).__module__}.{type(transport).__name__}"
                f" (driver {transport.driver_name} {transport.driver_version()})"
            )
        symbol_by_name(app.conf.beat_scheduler)
        tasks = sorted(name for name in app.tasks if not name.startswith("celery."))
        print(f"  {len(tasks)} tasks registered")

    report.attempt("celery", "config.celery", celery)

    def components() -> None:
        from django.core.cache import caches
        from django.core.files.storage import storages
        from django.db import connections
        from django.template import engines

        for alias in settings.DATABASES:
            connections[alias].Database  # noqa: B018 (loads the driver module)
        for alias in settings.CACHES:
            caches[alias].client  # noqa: B018 (the client class, no connection)
        for alias in settings.STORAGES:
            storages[alias]
        engines.all()

    report.attempt("django components", "databases, caches, storages, templates", components)

    def system_checks() -> None:
        from django.core.management import call_command

        call_command("check", verbosity=0)

    report.attempt("manage.py check", "system checks", system_checks)

    def command(name: str) -> None:
        path = Path(sys.prefix) / "bin" / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} (the image runs it)")

    for name in ("gunicorn", "celery"):
        report.attempt("command", name, lambda n=name: command(n))

    for category, count in report.counts.items():
        print(f"  {category}: {count} checked")
    if report.failures:
        print(f"\nFAILED: {len(report.failures)} import(s) need a package requirements.txt lacks:")
        for failure in report.failures:
            print(f"  {failure}")
        return 1
    print("OK: requirements.txt alone imports every app, module, settings path and the broker")
    return 0


if __name__ == "__main__":
    sys.exit(main())
