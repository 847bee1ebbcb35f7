import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from core.models import ApiKey, IdempotencyKey
from customers.models import Customer

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
    results: list[tuple[int, bool]] = []
    barrier = threading.Barrier(8)

    def worker():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        barrier.wait()
        response = post(client, {"external_id": "race", "name": "Race"}, "same-key")
        results.append((response.status_code, response.has_header("Idempotent-Replayed")))
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Customer.objects.filter(external_id="race").count() == 1
    statuses = sorted(status for status, _ in results)
    # Exactly one request ran; the rest were replayed (201) or told it is in use (409).
    assert len([1 for status, replayed in results if status == 201 and not replayed]) == 1
    assert set(statuses) <= {201, 409}
