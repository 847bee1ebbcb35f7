import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from core.models import ApiKey, IdempotencyKey
from customers.models import Customer
from tests.helpers.concurrency import race

URL = "/api/v1/customers/"


def post(client, body, key):
    return client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_same_key_and_body_replays_the_first_response(client):
    body = {"external_id": "c1", "name": "One"}
    first = post(client, body, "k1")
    second = post(client, body, "k1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Customer.objects.count() == 1


@pytest.mark.django_db
def test_same_key_with_another_body_is_422(client):
    post(client, {"external_id": "c1"}, "k1")
    response = post(client, {"external_id": "c2"}, "k1")
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["c1"]


@pytest.mark.django_db
def test_key_order_in_the_body_does_not_matter(client):
    post(client, {"external_id": "c1", "name": "One"}, "k1")
    again = client.post(
        URL,
        data='{"name": "One", "external_id": "c1"}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_keys_are_scoped_per_api_key(client):
    post(client, {"external_id": "c1"}, "shared")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKey.generate(name='other')[1]}")
    response = post(other, {"external_id": "c2"}, "shared")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response


@pytest.mark.django_db
def test_validation_errors_are_not_saved_so_a_fixed_request_can_reuse_the_key(client):
    assert post(client, {"external_id": "c1", "email": "bad"}, "k1").status_code == 400
    assert not IdempotencyKey.objects.exists()
    fixed = post(client, {"external_id": "c1", "email": "a@b.co"}, "k1")
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed
    assert post(client, {"external_id": "c1", "email": "a@b.co"}, "k1")["Idempotent-Replayed"]


@pytest.mark.django_db
def test_domain_conflict_is_saved_and_replayed(client):
    post(client, {"external_id": "c1"}, "a")
    first = post(client, {"external_id": "c1"}, "b")
    again = post(client, {"external_id": "c1"}, "b")
    assert first.status_code == again.status_code == 409
    assert again["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_overlong_key_is_rejected(client):
    response = post(client, {"external_id": "c1"}, "k" * 256)
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "invalid_idempotency_key"
    assert not Customer.objects.exists()


@pytest.mark.django_db
def test_key_in_use_is_409(client, api_key):
    IdempotencyKey.objects.create(api_key=api_key[0], key="busy", fingerprint="x" * 64)
    response = post(client, {"external_id": "c1"}, "busy")
    # A different fingerprint is reported first: it can never succeed.
    assert response.status_code == 422
    from core.idempotency import request_fingerprint

    IdempotencyKey.objects.filter(key="busy").update(
        fingerprint=request_fingerprint(method="POST", path=URL, body=b'{"external_id":"c1"}')
    )
    response = post(client, {"external_id": "c1"}, "busy")
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "idempotency_key_in_use"
    assert not Customer.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_create_one_customer(api_key):
    raw_key = api_key[1]

    def worker() -> tuple[int, bool]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        response = post(client, {"external_id": "race", "name": "Race"}, "same-key")
        return response.status_code, response.has_header("Idempotent-Replayed")

    results = race([worker] * 8)
    assert Customer.objects.filter(external_id="race").count() == 1
    statuses = sorted(status for status, _ in results)
    # Exactly one request ran; the rest were replayed (201) or told it is in use (409).
    assert len([1 for status, replayed in results if status == 201 and not replayed]) == 1
    assert set(statuses) <= {201, 409}


@pytest.mark.django_db(transaction=True)
def test_a_stale_claim_is_taken_over_only_if_its_owner_is_gone(api_key, settings):
    """A slow first request still holds its claim; only a dead one's claim is taken over."""
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from core.idempotency import request_fingerprint

    body = b'{"external_id":"slow"}'
    old = timezone.now() - timedelta(hours=1)
    claim = IdempotencyKey.objects.create(
        api_key=api_key[0],
        key="slow-key",
        locked_at=old,
        fingerprint=request_fingerprint(method="POST", path=URL, body=body),
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    holding, release = threading.Event(), threading.Event()

    def owner_still_working():
        with transaction.atomic():
            IdempotencyKey.objects.select_for_update().get(pk=claim.pk)
            holding.set()
            release.wait(60)
        connection.close()

    owner = threading.Thread(target=owner_still_working)
    owner.start()
    assert holding.wait(60), "the owner never locked its claim"
    try:
        busy = post(client, {"external_id": "slow"}, "slow-key")
        assert busy.status_code == 409
        assert busy.json()["errors"][0]["code"] == "idempotency_key_in_use"
    finally:
        release.set()
        owner.join()
    # The owner is gone (its lock released, its claim old): a retry takes over and runs.
    taken = post(client, {"external_id": "slow"}, "slow-key")
    assert taken.status_code == 201 and "Idempotent-Replayed" not in taken
    assert post(client, {"external_id": "slow"}, "slow-key")["Idempotent-Replayed"] == "true"
    assert Customer.objects.filter(external_id="slow").count() == 1


@pytest.mark.django_db
def test_stored_responses_are_encrypted(client):
    post(client, {"external_id": "c1", "tax_id": "FR-SECRET-1"}, "enc-key")
    with connection.cursor() as cursor:
        cursor.execute("SELECT response_body FROM core_idempotencykey")
        raw = cursor.fetchone()[0]
    assert "FR-SECRET-1" not in raw and raw.startswith("gAAAA")
