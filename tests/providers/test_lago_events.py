"""Usage events go to Lago as UsageEventData and come back as a BatchOutcome: Lago's
wire format and its per-index errors stay inside billing/providers/lago."""

from datetime import UTC, datetime

from billing.providers import lago as lago_client


def event(transaction_id: str, code: str = "tokens") -> lago_client.UsageEventData:
    return lago_client.UsageEventData(
        transaction_id=transaction_id,
        external_subscription_id="sub-1",
        code=code,
        timestamp=datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC),
        properties={"tokens": 7},
    )


def test_events_are_sent_in_lagos_shape(lago):
    outcome = lago_client.events_batch(events=[event("t-1")])

    assert outcome.stored
    (batch,) = [r["json"]["events"] for r in lago.requests]
    assert batch == [
        {
            "transaction_id": "t-1",
            "external_subscription_id": "sub-1",
            "code": "tokens",
            # Unix seconds with milliseconds, as a string: what Lago parses.
            "timestamp": "1772368215.250",
            "properties": {"tokens": 7},
        }
    ]
    assert set(lago.events) == {"t-1"}


def test_a_duplicate_is_reported_as_already_held_by_its_index(lago):
    assert lago_client.events_batch(events=[event("t-1")]).stored

    outcome = lago_client.events_batch(events=[event("t-2"), event("t-1")])

    # All or nothing: t-2 was not stored either, and is not reported as refused.
    assert (outcome.stored, outcome.already_held, outcome.refused) == (False, {1}, {})
    assert set(lago.events) == {"t-1"}
