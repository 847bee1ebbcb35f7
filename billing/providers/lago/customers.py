"""Lago's customers: `POST /customers` is an upsert by external_id, so a retry is harmless."""

from typing import Any

from billing.providers.base import CustomerData, RemoteObject
from billing.providers.lago.client import PROVIDER, request


def customer_upsert(*, data: CustomerData) -> RemoteObject:
    """`POST /customers` creates or updates by external_id, so a retry is harmless."""
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
    remote = body["customer"]
    return RemoteObject(PROVIDER, remote["lago_id"], remote)
