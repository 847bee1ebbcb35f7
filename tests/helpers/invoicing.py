"""Invoicing through the API, as the invoice tests drive it: subscribe, send usage, let the
periods close, generate. For an invoice a test needs but does not check, use
`tests.factories.InvoiceFactory` instead."""

from datetime import UTC, datetime

import time_machine

from subscriptions import services as subscription_services
from subscriptions.models import Subscription

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_15 = datetime(2026, 11, 15, tzinfo=UTC)


def subscribe(client, external_id: str, plan: str, start_at: datetime, customer="acme") -> dict:
    """Subscribe as if on `start_at` (the tests' dates lie months back): its periods then
    close one by one as time passes (close_periods), as they would have."""
    with time_machine.travel(start_at, tick=False):
        response = client.post(
            "/api/v1/subscriptions/",
            {
                "external_id": external_id,
                "customer": customer,
                "plan": plan,
                "start_at": start_at.isoformat(),
            },
            format="json",
        )
    assert response.status_code == 201, response.json()
    return response.json()


def record(client, subscription: str, metric: str, events: list[tuple[datetime, dict]]):
    payload = [
        {
            "transaction_id": f"{subscription}-{metric}-{i}",
            "subscription": subscription,
            "metric": metric,
            "timestamp": ts.isoformat(),
            "properties": props,
        }
        for i, (ts, props) in enumerate(events)
    ]
    for chunk in range(0, len(payload), 1000):
        response = client.post(
            "/api/v1/usage/batch/", {"events": payload[chunk : chunk + 1000]}, format="json"
        )
        assert response.status_code == 200, response.json()
        assert {r["status"] for r in response.json()["results"]} == {"created"}, response.json()


def close_periods(now: datetime = NOV_15) -> None:
    """Run the beat job's work for every subscription as if it were `now`."""
    for subscription in Subscription.objects.all():
        subscription_services.subscription_advance(subscription=subscription, now=now)


def generate(client, subscription: str, **period) -> tuple[int, dict]:
    body = {"subscription": subscription}
    body.update({k: v.isoformat() for k, v in period.items()})
    response = client.post("/api/v1/invoices/generate/", body, format="json")
    return response.status_code, response.json()


def amounts(invoice: dict) -> list[tuple[str, int]]:
    return [(line["description"], line["amount_cents"]) for line in invoice["lines"]]
