"""Personal data stays out of the logs (hardening: reliability, item 6): neither the
service's JSON lines nor gunicorn's access log carry a query string, where e-mails are."""

import logging
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.app.base import Application
from gunicorn.glogging import Logger

from core.logging import JsonFormatter, RequestIdFilter

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "alice@example.com"


def json_lines(records: list[logging.LogRecord]) -> str:
    """The records as the stdout handler writes them (config.settings LOGGING)."""
    formatter, request_ids = JsonFormatter(), RequestIdFilter()
    lines = []
    for record in records:
        request_ids.filter(record)
        lines.append(formatter.format(record))
    return "\n".join(lines)


@pytest.mark.django_db
def test_json_logs_name_the_path_without_its_query_string(client, admin_client, caplog):
    caplog.set_level(logging.INFO)
    query = f"?email={EMAIL}&external_id=x"
    # Requests that Django logs (django.request records carry the request): a 404 of the
    # API, one of the admin, and a refused filter.
    assert client.get(f"/api/v1/customers/nobody/{query}").status_code == 404
    assert admin_client.get(f"/admin/customers/customer/nothing/{query}").status_code in (302, 404)
    assert client.get(f"/api/v1/nothing-here/{query}").status_code == 404

    written = json_lines(caplog.records)
    assert '"path": "/api/v1/customers/nobody/"' in written  # the records are there
    assert EMAIL not in written and "alice" not in written
    assert "email=" not in written


class _Config(Application):
    """gunicorn's own loading of a config file, as `gunicorn -c FILE` does."""

    def __init__(self, path: Path):
        self.path = path
        super().__init__()

    def load_config(self) -> None:
        self.load_config_from_file(str(self.path))

    def init(self, parser, opts, args) -> None:
        return None

    def load(self):  # never serves
        raise NotImplementedError


def test_gunicorn_access_log_has_the_path_and_no_query_string_or_referer(tmp_path):
    cfg = _Config(ROOT / "config" / "gunicorn.conf.py").cfg
    assert "%(U)s" in cfg.access_log_format
    for leaking in ("%(r)s", "%(q)s", "%(f)s", "{query_string}e", "{raw_uri}e"):
        assert leaking not in cfg.access_log_format
    cfg.set("accesslog", str(tmp_path / "access.log"))
    logger = Logger(cfg)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/api/v1/customers/?email={EMAIL}",
        "PATH_INFO": "/api/v1/customers/",
        "QUERY_STRING": f"email={EMAIL}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.1",
        "HTTP_REFERER": f"https://billing.example.com/admin/customers/customer/?q={EMAIL}",
        "HTTP_USER_AGENT": "curl/8",
    }
    response = SimpleNamespace(status="200 OK", sent=12, headers=[("X-Request-ID", "req-1")])
    request = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"])])

    logger.access(response, request, environ, timedelta(milliseconds=5))

    line = (tmp_path / "access.log").read_text()
    assert '"GET /api/v1/customers/ HTTP/1.1" 200' in line
    assert "req-1" in line  # ties the line to the JSON logs
    assert EMAIL not in line


@pytest.mark.parametrize("path", ["Dockerfile", "scripts/run.sh"])
def test_gunicorn_runs_with_that_config(path):
    text = (ROOT / path).read_text()
    assert "-c config/gunicorn.conf.py" in text
    assert "--access-logfile" not in text  # the config's format, not gunicorn's default
