"""Intake: verified, stored first, duplicates harmless, forgeries refused."""

import time
import uuid

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.helpers.concurrency import race
from tests.helpers.signing import (
    dumps,
    lago_hmac,
    lago_jwt,
    stripe_event,
    stripe_signature,
)
from webhooks.models import UsageEventError, WebhookEvent
from webhooks.services import webhook_event_process

pytestmark = pytest.mark.django_db

CUSTOMER = {"id": "cus_123", "object": "customer", "name": "Acme", "email": "a@acme.test"}


def events_errors(transaction_ids: list[str]) -> dict:
    return {
        "webhook_type": "events.errors",
        "object_type": "events_errors",
        "organization_id": str(uuid.uuid4()),
        "events_errors": {
            "invalid_code": transaction_ids,
            "missing_aggregation_property": [],
            "invalid_filter_values": [],
            "missing_group_key": [],
        },
    }


def test_signed_stripe_event_is_stored_and_acknowledged(post_stripe):
    event = stripe_event("customer.updated", CUSTOMER)
    response = post_stripe(event)
    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    stored = WebhookEvent.objects.get()
    assert (stored.provider, stored.event_id, stored.type) == (
        "stripe",
        event["id"],
        "customer.updated",
    )
    assert stored.status == "received" and stored.object_id == "cus_123"
    assert stored.provider_created_at is not None


def test_any_configured_stripe_secret_verifies(post_stripe):
    event = stripe_event("customer.updated", CUSTOMER)
    body = dumps(event)
    old = stripe_signature(body, secret="whsec_old_" + "o" * 24)
    assert post_stripe(event, signature=old, body=body).status_code == 200


@pytest.mark.parametrize(
    "signature",
    [
        "",  # unsigned
        "t=1,v1=deadbeef",  # forged
        "garbage",
        None,  # replaced below by a stale but otherwise valid one
    ],
)
def test_bad_stripe_signatures_are_400_and_store_nothing(post_stripe, signature):
    event = stripe_event("customer.updated", CUSTOMER)
    body = dumps(event)
    if signature is None:
        signature = stripe_signature(body, at=int(time.time()) - 301)
    response = post_stripe(event, signature=signature, body=body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()


def test_a_signed_body_altered_in_transit_is_refused(post_stripe):
    event = stripe_event("customer.updated", CUSTOMER)
    signature = stripe_signature(dumps(event))
    event["data"]["object"]["email"] = "attacker@evil.test"
    assert post_stripe(event, signature=signature).status_code == 400
    assert not WebhookEvent.objects.exists()


def test_stripe_redelivery_is_acknowledged_once(post_stripe):
    event = stripe_event("customer.updated", CUSTOMER)
    assert post_stripe(event).json()["duplicate"] is False
    again = post_stripe(event)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert WebhookEvent.objects.count() == 1


def test_lago_hmac_event_is_stored_with_its_unique_key(post_lago):
    key = str(uuid.uuid4())
    response = post_lago(events_errors(["t1"]), unique_key=key)
    assert response.status_code == 200
    stored = WebhookEvent.objects.get()
    assert (stored.provider, stored.event_id, stored.type) == ("lago", key, "events.errors")


def test_lago_forgeries_are_refused(post_lago):
    payload = events_errors(["t1"])
    assert post_lago(payload, signature="bm9wZQ==").status_code == 400
    assert post_lago(payload, signature="").status_code == 400
    assert post_lago(payload, algorithm="md5").status_code == 400
    assert post_lago(payload, signature=lago_hmac(dumps(payload), key="other")).status_code == 400
    assert not WebhookEvent.objects.exists()


def test_lago_without_unique_key_is_refused(anonymous_client):
    body = dumps(events_errors(["t1"]))
    response = anonymous_client.post(
        "/webhooks/lago/",
        data=body,
        content_type="application/json",
        HTTP_X_LAGO_SIGNATURE=lago_hmac(body),
        HTTP_X_LAGO_SIGNATURE_ALGORITHM="hmac",
    )
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_lago_jwt_is_verified_with_lagos_public_key(post_lago, lago):
    payload = events_errors(["t1"])
    body = dumps(payload)
    token = lago_jwt(body, lago.private_key_pem, issuer=lago.url)
    assert post_lago(payload, algorithm="jwt", signature=token, body=body).status_code == 200
    # The key was fetched once, then cached.
    fetches = [r for r in lago.requests if r["path"].endswith("/webhooks/json_public_key")]
    assert len(fetches) <= 1
    tampered = dumps(events_errors(["t2"]))
    assert post_lago(payload, algorithm="jwt", signature=token, body=tampered).status_code == 400


def test_lago_jwt_from_another_key_is_refused(post_lago, lago):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    payload = events_errors(["t1"])
    body = dumps(payload)
    token = lago_jwt(body, other, issuer=lago.url)
    response = post_lago(payload, algorithm="jwt", signature=token, body=body)
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def _public_key_fetches(lago) -> int:
    return sum(r["path"].endswith("/webhooks/json_public_key") for r in lago.requests)


def _rejection_text(response) -> str:
    return response.content.decode()


def test_forged_lago_jwts_while_lago_is_down_fetch_the_key_once(post_lago, lago):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    forger = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    lago.fail_next(100, status=503, path_prefix="/webhooks/json_public_key")
    payload = events_errors(["t1"])
    body = dumps(payload)
    started = time.monotonic()
    for _ in range(10):
        token = lago_jwt(body, forger, issuer=lago.url)
        response = post_lago(payload, algorithm="jwt", signature=token, body=body)
        assert response.status_code == 400
        text = _rejection_text(response)
        assert "JWT signature rejected" in text
        # Nothing about our state or Lago's reaches an unauthenticated sender.
        assert "503" not in text and "json_public_key" not in text and "lago" not in text.lower()
    assert _public_key_fetches(lago) == 1  # the failure is cached, with a backoff
    assert time.monotonic() - started < 5
    assert not WebhookEvent.objects.exists()


def test_lago_jwt_key_fetch_is_retried_after_its_backoff(post_lago, lago, monkeypatch):
    from billing.providers.lago import webhooks as lago_webhooks

    lago.fail_next(1, status=503, path_prefix="/webhooks/json_public_key")
    payload = events_errors(["t1"])
    body = dumps(payload)
    token = lago_jwt(body, lago.private_key_pem, issuer=lago.url)
    assert post_lago(payload, algorithm="jwt", signature=token, body=body).status_code == 400
    assert post_lago(payload, algorithm="jwt", signature=token, body=body).status_code == 400
    assert _public_key_fetches(lago) == 1
    # The backoff is over (in this process and in the cache): Lago is asked again.
    lago_webhooks._public_key_memo["retry_at"] = 0
    lago_webhooks.cache.delete(lago_webhooks.PUBLIC_KEY_FAILURE_CACHE_KEY)
    assert post_lago(payload, algorithm="jwt", signature=token, body=body).status_code == 200
    assert _public_key_fetches(lago) == 2


def test_lago_jwt_with_another_issuer_or_expired_is_refused(post_lago, lago):
    import jwt as pyjwt

    payload = events_errors(["t1"])
    body = dumps(payload)
    wrong_issuer = lago_jwt(body, lago.private_key_pem, issuer="http://evil.test")
    response = post_lago(payload, algorithm="jwt", signature=wrong_issuer, body=body)
    assert response.status_code == 400
    assert "JWT signature rejected" in _rejection_text(response)
    expired = pyjwt.encode(
        {"data": body.decode(), "iss": lago.url, "exp": int(time.time()) - 3600},
        lago.private_key_pem,
        algorithm="RS256",
    )
    assert post_lago(payload, algorithm="jwt", signature=expired, body=body).status_code == 400
    no_issuer = pyjwt.encode({"data": body.decode()}, lago.private_key_pem, algorithm="RS256")
    assert post_lago(payload, algorithm="jwt", signature=no_issuer, body=body).status_code == 400
    fresh = pyjwt.encode(
        {"data": body.decode(), "iss": lago.url, "exp": int(time.time()) + 300},
        lago.private_key_pem,
        algorithm="RS256",
    )
    assert post_lago(payload, algorithm="jwt", signature=fresh, body=body).status_code == 200
    assert _public_key_fetches(lago) == 1


def test_lago_jwt_with_another_algorithm_fetches_nothing(post_lago, lago):
    import jwt as pyjwt

    payload = events_errors(["t1"])
    body = dumps(payload)
    token = pyjwt.encode({"data": body.decode(), "iss": lago.url}, "x" * 32, algorithm="HS256")
    response = post_lago(payload, algorithm="jwt", signature=token, body=body)
    assert response.status_code == 400
    assert "JWT signature rejected" in _rejection_text(response)
    assert _public_key_fetches(lago) == 0


def test_unknown_types_are_stored_and_ignored(post_stripe):
    post_stripe(stripe_event("balance.available", {"id": "bal", "object": "balance"}))
    event = WebhookEvent.objects.get()
    assert webhook_event_process(event_pk=event.pk) == "ignored"
    event.refresh_from_db()
    assert event.status == "ignored" and event.note == "no handler for this type"


def test_events_errors_are_recorded_for_staff(post_lago):
    post_lago(events_errors(["t1", "t2"]))
    event = WebhookEvent.objects.get()
    assert webhook_event_process(event_pk=event.pk) == "processed"
    assert webhook_event_process(event_pk=event.pk) == "skipped"
    assert sorted(UsageEventError.objects.values_list("transaction_id", "error")) == [
        ("t1", "invalid_code"),
        ("t2", "invalid_code"),
    ]


def test_body_is_encrypted_at_rest(post_stripe):
    post_stripe(stripe_event("customer.updated", CUSTOMER))
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM webhooks_webhookevent")
        raw = cursor.fetchone()[0]
    assert "a@acme.test" not in raw and raw.startswith("gAAAA")


@pytest.mark.django_db(transaction=True)
def test_the_same_event_five_times_at_once_has_one_effect(settings):
    payload = events_errors(["race-1"])
    body = dumps(payload)
    key = str(uuid.uuid4())

    def deliver() -> int:
        return (
            APIClient()
            .post(
                "/webhooks/lago/",
                data=body,
                content_type="application/json",
                HTTP_X_LAGO_SIGNATURE=lago_hmac(body),
                HTTP_X_LAGO_SIGNATURE_ALGORITHM="hmac",
                HTTP_X_LAGO_UNIQUE_KEY=key,
            )
            .status_code
        )

    statuses = race([deliver] * 5)
    assert statuses == [200] * 5
    event = WebhookEvent.objects.get()

    outcomes = race([lambda: webhook_event_process(event_pk=event.pk)] * 5)
    assert sorted(outcomes) == ["processed"] + ["skipped"] * 4
    assert UsageEventError.objects.filter(transaction_id="race-1").count() == 1


def test_sweeper_publishes_events_whose_task_was_lost(post_stripe, settings):
    from datetime import timedelta

    from django.utils import timezone

    from webhooks.services import webhook_sweep

    settings.SWEEP_GRACE_SECONDS = 60
    post_stripe(stripe_event("customer.updated", CUSTOMER))
    assert webhook_sweep() == 0  # just received: its task is on its way
    WebhookEvent.objects.update(available_at=timezone.now() - timedelta(minutes=5))
    assert webhook_sweep() == 1
    assert webhook_sweep() == 0
    # A worker that died mid-event frees it; one that dies on every attempt fails it.
    WebhookEvent.objects.update(
        status="processing",
        attempts=settings.WEBHOOK_MAX_ATTEMPTS,
        locked_at=timezone.now() - timedelta(hours=1),
    )
    webhook_sweep()
    assert WebhookEvent.objects.get().status == "failed"


def test_a_lago_body_replayed_under_a_new_unique_key_counts_once(post_lago):
    payload = events_errors(["t-replay"])
    body = dumps(payload)
    first = post_lago(payload, body=body, unique_key=str(uuid.uuid4()))
    again = post_lago(payload, body=body, unique_key=str(uuid.uuid4()))
    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    assert WebhookEvent.objects.count() == 1
