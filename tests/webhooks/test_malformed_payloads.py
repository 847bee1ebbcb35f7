"""A signed body the providers' parsers cannot read is kept, and fails at once for staff:
retrying cannot make it readable, and once the parser can read it, it is replayed."""

import uuid

import pytest

from tests.helpers.signing import stripe_event
from webhooks.models import WebhookEvent
from webhooks.services import webhook_event_process

pytestmark = pytest.mark.django_db


def process_only() -> WebhookEvent:
    event = WebhookEvent.objects.get()
    webhook_event_process(event_pk=event.pk)
    event.refresh_from_db()
    return event


def test_a_stripe_event_without_its_object_is_kept_and_failed_once(post_stripe):
    payload = stripe_event("customer.deleted", {"id": "cus_1", "object": "customer"})
    del payload["data"]["object"]

    assert post_stripe(payload).status_code == 200
    event = process_only()

    assert (event.status, event.attempts, event.object_id) == ("failed", 1, "")
    assert "malformed" in event.last_error


def test_a_lago_webhook_whose_object_has_no_id_is_kept_and_failed_once(post_lago):
    payload = {
        "webhook_type": "customer.updated",
        "object_type": "customer",
        "organization_id": str(uuid.uuid4()),
        "customer": {"external_id": "acme", "updated_at": "2026-02-01T00:00:00Z"},
    }

    assert post_lago(payload).status_code == 200
    event = process_only()

    assert (event.status, event.attempts) == ("failed", 1)
    assert "malformed" in event.last_error
