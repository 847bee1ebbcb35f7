"""Production settings: secrets are required and `check --deploy` is clean."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FERNET_KEY = "3q2-7wEjbq7jJ9Yq0mR1vC8cN6v4H5bT2kLx9sWz0aE="


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings.production", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


SECRETS = {
    "DJANGO_SECRET_KEY": "a-long-random-production-secret-key-for-the-check-0123456789abcdef",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/billing",
    "DJANGO_ALLOWED_HOSTS": "billing.example.com",
    "FIELD_ENCRYPTION_KEYS": FERNET_KEY,
}


def test_check_deploy_is_clean_under_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **SECRETS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_its_secrets():
    for missing in ("DJANGO_SECRET_KEY", "DATABASE_URL", "FIELD_ENCRYPTION_KEYS"):
        env = {k: v for k, v in SECRETS.items() if k != missing}
        result = manage("check", **env)
        assert result.returncode != 0, missing
        assert missing in result.stderr or "FIELD_ENCRYPTION_KEYS" in result.stderr
