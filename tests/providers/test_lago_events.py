"""Usage events built as UsageEventData reach Lago exactly as the dicts the usage forwarder
builds today do, so it can switch to them without a change on the wire."""

from datetime import UTC, datetime

from billing.providers import lago as lago_client


def test_usage_event_data_is_sent_as_the_forwarder_s_dicts_are(lago):
    moment = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
    as_data = lago_client.UsageEventData(
        transaction_id="t-data",
        external_subscription_id="sub-1",
        code="tokens",
        timestamp=moment,
        properties={"tokens": 7},
    )
    as_dict = {
        "transaction_id": "t-dict",
        "external_subscription_id": "sub-1",
        "code": "tokens",
        "timestamp": "1772368215.250",
        "properties": {"tokens": 7},
    }

    assert lago_client.events_batch(events=[as_data, as_dict]) == {}

    (batch,) = [r["json"]["events"] for r in lago.requests]
    assert batch[0] == {**as_dict, "transaction_id": "t-data"}
    assert set(lago.events) == {"t-data", "t-dict"}


def test_a_duplicate_comes_back_as_lagos_per_index_errors(lago):
    event = lago_client.UsageEventData(
        transaction_id="t-1",
        external_subscription_id="sub-1",
        code="tokens",
        timestamp=datetime(2026, 3, 1, tzinfo=UTC),
    )
    assert lago_client.events_batch(events=[event]) == {}

    errors = lago_client.events_batch(events=[event])

    assert errors == {"0": {"transaction_id": ["value_already_exist"]}}
