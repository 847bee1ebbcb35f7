"""Writes to customers. Views, admin and tasks call these; nothing else saves a Customer."""

from typing import Any

from django.db import IntegrityError, transaction

from core.exceptions import Conflict
from customers.models import Customer

UPDATABLE_FIELDS = (
    "name",
    "email",
    "currency",
    "country",
    "address_line1",
    "city",
    "zipcode",
    "state",
    "tax_id",
    "metadata",
)


def customer_create(*, external_id: str, **fields: Any) -> Customer:
    customer = Customer(external_id=external_id, **_only_updatable(fields))
    customer.full_clean(exclude=["stripe_customer_id", "lago_id"], validate_unique=False)
    try:
        # The unique constraint decides between racing creates, not a prior lookup.
        with transaction.atomic():
            customer.save()
    except IntegrityError as exc:
        if "external_id" in str(exc):
            raise Conflict(
                f"A customer with external_id '{external_id}' already exists.",
                code="customer_exists",
            ) from exc
        raise
    return customer


def customer_update(*, customer: Customer, **fields: Any) -> Customer:
    changes = _only_updatable(fields)
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        for name, value in changes.items():
            setattr(locked, name, value)
        if changes:
            locked.full_clean(exclude=["stripe_customer_id", "lago_id"], validate_unique=False)
            locked.save(update_fields=[*changes, "updated_at"])
    return locked


def _only_updatable(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(UPDATABLE_FIELDS)
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    return {
        name: ("" if value is None and name != "metadata" else value)
        for name, value in fields.items()
    }
