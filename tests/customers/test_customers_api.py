import pytest
from django.db import connection

from billing.sync.models import OutboxMessage
from customers.models import Customer

URL = "/api/v1/customers/"

pytestmark = pytest.mark.django_db


def create(client, **fields):
    body = {"external_id": "cus-1", "name": "Ada Lovelace", "email": "ada@example.com", **fields}
    return client.post(URL, body, format="json")


def test_create_then_get(client):
    response = create(
        client,
        currency="eur",
        country="fr",
        address_line1="1 rue de Rivoli",
        city="Paris",
        zipcode="75001",
        tax_id="FR12345678901",
        metadata={"plan": "pro"},
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["external_id"] == "cus-1"
    assert body["currency"] == "EUR" and body["country"] == "FR"
    assert body["sync"] == {
        "lago": {"status": "disabled", "error": None},
        "stripe": {"status": "disabled", "error": None},
    }
    assert {"id", "created_at", "updated_at"} <= set(body)

    got = client.get(f"{URL}cus-1/")
    assert got.status_code == 200
    assert got.json()["tax_id"] == "FR12345678901"
    assert got.json()["city"] == "Paris"


def test_address_and_tax_id_are_encrypted_at_rest(client):
    create(client, tax_id="FR12345678901", address_line1="1 rue de Rivoli", city="Paris")
    with connection.cursor() as cursor:
        cursor.execute("SELECT tax_id, address_line1, city FROM customers_customer")
        row = cursor.fetchone()
    assert all(value and value.startswith("gAAAA") for value in row)
    assert "FR12345678901" not in str(row)


def test_missing_or_unknown_key_is_401(anonymous_client, client):
    assert anonymous_client.get(URL).status_code == 401
    anonymous_client.credentials(HTTP_AUTHORIZATION="Bearer bk_nope")
    response = anonymous_client.get(URL)
    assert response.status_code == 401
    assert response.json()["type"] == "client_error"


def test_revoked_key_is_401(client, api_key):
    from django.utils import timezone

    api_key[0].revoked_at = timezone.now()
    api_key[0].save()
    assert client.get(URL).status_code == 401


def test_read_only_key_can_read_but_not_write(read_only_client):
    assert read_only_client.get(URL).status_code == 200
    response = create(read_only_client)
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "permission_denied"
    assert not Customer.objects.exists()


def test_duplicate_external_id_is_409(client):
    assert create(client).status_code == 201
    response = create(client, name="Someone else")
    assert response.status_code == 409
    assert response.json() == {
        "type": "client_error",
        "errors": [
            {
                "code": "customer_exists",
                "detail": response.json()["errors"][0]["detail"],
                "attr": None,
            }
        ],
    }
    assert Customer.objects.get().name == "Ada Lovelace"


@pytest.mark.parametrize(
    ("field", "value"),
    [("email", "not-an-email"), ("currency", "EURO"), ("country", "XX"), ("external_id", "")],
)
def test_invalid_input_is_400_in_the_error_shape(client, field, value):
    response = create(client, **{field: value})
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert body["errors"][0]["attr"] == field
    assert not Customer.objects.exists()


def test_update_changes_fields_but_not_external_id(client):
    create(client)
    response = client.patch(
        f"{URL}cus-1/", {"name": "Ada King", "external_id": "other"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Ada King"
    assert response.json()["external_id"] == "cus-1"
    assert client.patch(f"{URL}cus-1/", {"email": "bad"}, format="json").status_code == 400
    assert Customer.objects.get().email == "ada@example.com"


def test_unknown_customer_is_404(client):
    response = client.get(f"{URL}nobody/")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


def test_list_filters_and_cursor_pagination(client):
    for i in range(7):
        create(
            client, external_id=f"c{i}", email=f"u{i}@example.com", country="DE" if i % 2 else "FR"
        )
    page = client.get(URL, {"page_size": 3}).json()
    assert [c["external_id"] for c in page["results"]] == ["c6", "c5", "c4"]
    assert page["previous"] is None and page["next"]
    second = client.get(page["next"]).json()
    assert [c["external_id"] for c in second["results"]] == ["c3", "c2", "c1"]
    assert {c["external_id"] for c in client.get(URL, {"country": "de"}).json()["results"]} == {
        "c1",
        "c3",
        "c5",
    }
    assert [
        c["external_id"] for c in client.get(URL, {"email": "U2@example.com"}).json()["results"]
    ] == ["c2"]
    assert [c["external_id"] for c in client.get(URL, {"search": "c4"}).json()["results"]] == ["c4"]
    assert client.get(URL, {"created_after": "not-a-date"}).status_code == 400
    assert client.get(URL, {"page_size": 10000}).status_code == 200


def test_no_outbox_rows_when_providers_are_disabled(client):
    create(client)
    assert not OutboxMessage.objects.exists()


def test_audit_trail_names_the_api_key(client, api_key):
    create(client)
    client.patch(f"{URL}cus-1/", {"name": "Ada King"}, format="json")
    customer = Customer.objects.get()
    events = list(customer.events.order_by("pgh_id"))
    assert [e.pgh_label for e in events] == ["insert", "update"]
    assert events[1].name == "Ada King"
    assert events[1].pgh_context.metadata["api_key"] == "test-service"
