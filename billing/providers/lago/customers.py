"""Lago's customers: `POST /customers` is an upsert by external_id, so a retry is harmless."""

from typing import Any

from billing.providers.base import CustomerData, LagoCustomer
from billing.providers.lago.client import lago_id_of, object_in, request, text_of, time_of


def customer_upsert(*, data: CustomerData) -> LagoCustomer:
    customer: dict[str, Any] = {
        "external_id": data.external_id,
        "name": data.name or None,
        "email": data.email or None,
        "currency": data.currency or None,
        "country": data.country or None,
        "address_line1": data.address_line1 or None,
        "city": data.city or None,
        "zipcode": data.zipcode or None,
        "state": data.state or None,
        "tax_identification_number": data.tax_id or None,
    }
    body = request("POST", "customers", body={"customer": customer})
    return parse_customer(object_in(body, "customer"))


def parse_customer(obj: dict[str, Any]) -> LagoCustomer:
    return LagoCustomer(
        lago_id=lago_id_of(obj, "customer"),
        external_id=text_of(obj.get("external_id")),
        created_at=time_of(obj.get("created_at")),
        updated_at=time_of(obj.get("updated_at")),
    )
