"""Entry points refuse to start without DJANGO_SETTINGS_MODULE (no local-settings fallback)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.pop("BILLING_IMAGE", None)
    env.update(extra)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("module", ["config.wsgi", "config.asgi", "config.celery"])
def test_entry_points_refuse_to_start_without_a_settings_module(module):
    result = _run("-c", f"import {module}")
    assert result.returncode != 0
    assert "DJANGO_SETTINGS_MODULE is not set; refusing to start" in result.stderr


def test_manage_py_refuses_in_the_image_without_a_settings_module():
    result = _run("manage.py", "check", BILLING_IMAGE="1")
    assert result.returncode != 0
    assert "refusing to start in the image" in result.stderr


def test_manage_py_still_defaults_to_local_settings_for_developers():
    code = "import os; print(os.environ['DJANGO_SETTINGS_MODULE'])"
    result = _run("manage.py", "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "config.settings.local"


def test_the_web_entry_point_freezes_startup_objects_and_collects_less_often():
    code = "import gc, config.wsgi; print(gc.get_threshold()[0], gc.get_freeze_count() > 0)"
    result = _run("-c", code, DJANGO_SETTINGS_MODULE="config.settings.test")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["50000", "True"]

    result = _run(
        "-c", code, DJANGO_SETTINGS_MODULE="config.settings.test", GC_GEN0_THRESHOLD="700"
    )
    assert result.stdout.split()[-2:] == ["700", "True"]
