"""Operations endpoints, logs, commands and the admin."""

import io
import json
import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from core.encryption import _fernet
from core.logging import JsonFormatter, RequestIdFilter
from core.models import ApiKey, hash_api_key
from customers import services
from customers.models import Customer
from tests.factories import CustomerFactory


@pytest.mark.django_db
def test_health_live_and_ready(anonymous_client):
    assert anonymous_client.get("/health/live/").json() == {"status": "ok"}
    ready = anonymous_client.get("/health/ready/")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_ready_names_the_failing_component(anonymous_client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = anonymous_client.get("/health/ready/", HTTP_HOST="10.0.0.7")  # a pod IP
    # The broker degrades the instance; only the database takes it out of rotation.
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["failing"] == ["broker"]
    assert response.json()["checks"]["database"] == "ok"


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


@pytest.mark.django_db
def test_ready_stays_200_with_redis_down_and_reports_it(anonymous_client, settings):
    down = f"redis://127.0.0.1:{_closed_port()}/0"
    caches = {"default": {**settings.CACHES["default"], "LOCATION": down}}
    settings.CACHES = caches
    settings.CELERY_BROKER_URL = down
    response = anonymous_client.get("/health/ready/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "degraded"
    assert body["failing"] == ["cache", "broker"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["cache"].startswith("error: ")
    text = anonymous_client.get("/metrics").content.decode()
    assert 'dependency_up{dependency="cache"} 0.0' in text
    assert 'dependency_up{dependency="broker"} 0.0' in text
    assert 'dependency_up{dependency="database"} 1.0' in text


@pytest.mark.django_db
def test_metrics_report_every_dependency_up(anonymous_client):
    text = anonymous_client.get("/metrics").content.decode()
    for name in ("database", "cache", "broker"):
        assert f'dependency_up{{dependency="{name}"}} 1.0' in text


def test_ready_is_503_when_the_database_is_unreachable(anonymous_client, monkeypatch):
    from django.db import OperationalError

    from core import health

    def unreachable():
        raise OperationalError("connection refused")

    monkeypatch.setitem(health.CHECKS, "database", unreachable)
    response = anonymous_client.get("/health/ready/")
    assert response.status_code == 503
    assert response.json()["status"] == "fail"
    assert response.json()["failing"] == ["database"]


@pytest.mark.django_db
def test_metrics_expose_latency_and_outbox_backlog(client, anonymous_client):
    client.get("/api/v1/customers/")
    text = anonymous_client.get("/metrics").content.decode()
    assert "http_request_duration_seconds_bucket" in text
    assert 'route="api/v1/customers/"' in text
    assert "outbox_messages" in text


@pytest.mark.django_db
def test_schema_is_openapi_3_and_docs_use_no_cdn(anonymous_client):
    schema = anonymous_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    document = schema.json()
    assert document["openapi"].startswith("3.")
    operations = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert {"CreateCustomer", "GetCustomer", "UpdateCustomer", "ListCustomers"} <= operations
    assert document["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    docs = anonymous_client.get("/api/docs/").content.decode()
    assert "cdn" not in docs.lower() and "unpkg" not in docs.lower()
    assert "/static/drf_spectacular_sidecar/" in docs


def test_schema_validates_as_openapi(db):
    from openapi_spec_validator import validate
    from rest_framework.test import APIClient

    body = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    validate(body.json())


@pytest.mark.django_db
def test_request_id_is_echoed_or_generated(anonymous_client):
    echoed = anonymous_client.get("/health/live/", HTTP_X_REQUEST_ID="abc-123")
    assert echoed["X-Request-ID"] == "abc-123"
    generated = anonymous_client.get("/api/v1/customers/")
    assert len(generated["X-Request-ID"]) == 32
    hostile = anonymous_client.get("/api/v1/customers/", HTTP_X_REQUEST_ID="x\ny" * 100)
    assert "\n" not in hostile["X-Request-ID"]


def test_json_log_lines_carry_the_request_id():
    from core.context import request_id_var

    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    record.outbox_id = 7
    token = request_id_var.set("rid-1")
    try:
        RequestIdFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "hello you"
    assert line["request_id"] == "rid-1"
    assert line["outbox_id"] == 7


@pytest.mark.django_db
def test_create_api_key_prints_the_key_once_and_stores_its_hash():
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "usage-collector", "--read-only", stdout=out, stderr=err)
    raw = out.getvalue().strip()
    key = ApiKey.objects.get(name="usage-collector")
    assert key.read_only and key.key_hash == hash_api_key(raw)
    assert raw not in str(list(ApiKey.objects.values_list()))


@pytest.mark.django_db
def test_seed_demo_is_idempotent():
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    assert Customer.objects.filter(external_id__startswith="demo-").count() == 3
    assert ApiKey.objects.filter(name="demo", revoked_at__isnull=True).count() == 1


@pytest.mark.django_db
def test_rotate_encryption_keys(settings):
    CustomerFactory(external_id="c1", tax_id="SECRET-TAX", city="Paris")
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    _fernet.cache_clear()
    call_command("rotate_encryption_keys", stdout=io.StringIO())
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is gone
    _fernet.cache_clear()
    try:
        customer = Customer.objects.get()
        assert customer.tax_id == "SECRET-TAX" and customer.city == "Paris"
        assert customer.events.first().tax_id == "SECRET-TAX"  # history rotated too
    finally:
        settings.FIELD_ENCRYPTION_KEYS = [old_key]
        _fernet.cache_clear()
    with connection.cursor() as cursor:
        cursor.execute("SELECT tax_id FROM customers_customer")
        assert cursor.fetchone()[0] != "SECRET-TAX"


@pytest.mark.django_db
def test_admin_pages_render_for_staff(admin_client):
    CustomerFactory(external_id="c1", name="Ada")
    assert admin_client.get("/admin/customers/customer/").status_code == 200
    customer = Customer.objects.get()
    assert admin_client.get(f"/admin/customers/customer/{customer.pk}/change/").status_code == 200
    assert admin_client.get("/admin/sync/outboxmessage/").status_code == 200
    assert admin_client.get("/admin/core/apikey/").status_code == 200


@pytest.mark.django_db
def test_admin_creates_and_revokes_api_keys(admin_client):
    response = admin_client.post(
        "/admin/core/apikey/add/", {"name": "reports", "read_only": "on"}, follow=True
    )
    assert response.status_code == 200
    key = ApiKey.objects.get(name="reports")
    # Shown once, on the response page itself: never in the messages cookie or session.
    raw = response.context["raw_key"]
    assert raw.startswith(key.prefix) and key.key_hash == hash_api_key(raw)
    assert raw in response.content.decode()
    assert response["Cache-Control"].count("no-store") == 1
    assert all(raw not in morsel.value for morsel in response.cookies.values())
    assert all(raw not in morsel.value for morsel in admin_client.cookies.values())
    assert raw not in str(dict(admin_client.session))
    assert not [str(m) for m in response.context["messages"]]
    admin_client.post(
        "/admin/core/apikey/",
        {"action": "revoke", "_selected_action": [str(key.pk)]},
    )
    key.refresh_from_db()
    assert key.revoked_at is not None


@pytest.mark.django_db
def test_admin_edits_go_through_the_services_and_are_audited(admin_client, monkeypatch):
    customer = CustomerFactory(external_id="c1", name="Ada")
    calls = []
    real_update = services.customer_update
    monkeypatch.setattr(
        services, "customer_update", lambda **kw: calls.append(kw) or real_update(**kw)
    )
    response = admin_client.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        {
            "name": "Ada King",
            "email": "ada@example.com",
            "currency": "EUR",
            "metadata": "{}",
            "address_line1": "",
            "city": "",
            "zipcode": "",
            "state": "",
            "country": "FR",
            "tax_id": "",
            "tax_rate": "0",
            # The payment methods inline's (empty) formset.
            "payment_methods-TOTAL_FORMS": "0",
            "payment_methods-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    customer.refresh_from_db()
    assert customer.name == "Ada King"
    assert calls and calls[0]["name"] == "Ada King"
    event = customer.events.order_by("-pgh_id").first()
    assert event.pgh_label == "update"
    assert event.pgh_context.metadata["user"] is not None


@pytest.mark.django_db
def test_ready_fails_fast_on_a_broker_that_never_answers(anonymous_client, settings):
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never says a word
    try:
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        started = time.monotonic()
        response = anonymous_client.get("/health/ready/")
        assert response.status_code == 200 and response.json()["failing"] == ["broker"]
        assert time.monotonic() - started < 10
    finally:
        silent.close()


@pytest.mark.django_db
def test_unknown_api_routes_answer_in_the_error_shape(client):
    response = client.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json()["type"] == "client_error"
    assert response.json()["errors"][0]["code"] == "not_found"


@pytest.mark.django_db
def test_metric_labels_come_from_a_closed_set(anonymous_client, client):
    client.generic("BREW", "/api/v1/customers/")
    text = anonymous_client.get("/metrics").content.decode()
    assert 'method="BREW"' not in text


def test_sentry_events_are_scrubbed():
    from core.observability import scrub_event

    event = {
        "request": {
            "data": {"email": "a@b.co"},
            "cookies": {"s": "1"},
            "headers": {"Authorization": "Bearer bk_x", "X-Request-ID": "r1"},
        },
        "user": {"email": "a@b.co"},
        "breadcrumbs": {"values": [{"message": "sql", "data": {"params": ["a@b.co"]}}]},
    }
    scrubbed = scrub_event(event, {})
    assert "a@b.co" not in json.dumps(scrubbed) and "bk_x" not in json.dumps(scrubbed)
    assert scrubbed["request"]["headers"] == {"X-Request-ID": "r1"}


@pytest.mark.django_db
def test_bearer_scheme_is_case_insensitive(api_key):
    from rest_framework.test import APIClient

    lower = APIClient()
    lower.credentials(HTTP_AUTHORIZATION=f"bearer {api_key[1]}")
    assert lower.get("/api/v1/customers/").status_code == 200
