"""Every identifier placed in a Lago URL is percent-encoded: an id is one path segment,
never a query string, a fragment or another path (`victim?x` once built a DELETE of
`victim`). Checked against the spec-validating fake Lago."""

from datetime import UTC, datetime

import pytest
import requests

from billing.providers import lago as lago_client
from billing.providers.base import SubscriptionData
from billing.providers.lago.client import segment


def _seed(lago, *external_ids: str) -> None:
    # The plan is set-up only, created straight in the fake; the subscriptions go through
    # the provider client, as the outbox sends them.
    plan = {"name": "Pro", "code": "pro", "interval": "monthly", "amount_cents": 4900}
    response = requests.post(
        f"{lago.url}/api/v1/plans",
        json={"plan": {**plan, "amount_currency": "USD", "pay_in_advance": False}},
        headers={"Authorization": f"Bearer {lago.api_key}"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    for external_id in external_ids:
        lago_client.subscription_create(
            subscription=SubscriptionData(
                external_id=external_id,
                external_customer_id="acme",
                plan_code="pro",
                billing_time="calendar",
                subscription_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )


def test_terminating_victim_x_terminates_it_not_victim(lago):
    _seed(lago, "victim", "victim?x")

    terminated = lago_client.subscription_terminate(
        external_id="victim?x", pending=False, invoice=False
    )

    assert terminated.external_id == "victim?x"
    assert lago.subscriptions["victim"]["status"] == "active"
    assert lago.subscriptions["victim?x"]["status"] == "terminated"
    (delete,) = [r for r in lago.requests if r["method"] == "DELETE"]
    assert delete["path"] == "/api/v1/subscriptions/victim?x"  # as Lago decodes it


def test_reading_an_id_with_a_hash_reads_that_id(lago):
    _seed(lago, "a#b", "a")

    assert lago_client.subscription_get(external_id="a#b").external_id == "a#b"
    assert lago_client.subscription_get(external_id="a").external_id == "a"


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_a_segment_that_cannot_name_an_object_is_refused(value):
    with pytest.raises(ValueError):
        segment(value)


def test_segments_are_encoded_whole():
    assert segment("victim?x") == "victim%3Fx"
    assert segment("a/b#c d%") == "a%2Fb%23c%20d%25"
