"""The current period is a function of the clock, not of when the beat job last ran; the
usage read and the invoice price the same time the same way; a reactivation keeps when
the subscription first started (issue 12, money item 7)."""

from datetime import UTC, datetime

import pytest
import time_machine

from subscriptions.models import Subscription, SubscriptionPeriod
from tests.factories import ChargeFactory, PlanFactory
from tests.helpers.catalog import GRADUATED_TOKENS
from tests.helpers.invoicing import NOV_1, OCT_1, amounts, generate, record, subscribe

pytestmark = pytest.mark.django_db

JUST_AFTER_NOV_1 = datetime(2026, 11, 1, 0, 5, tzinfo=UTC)
USAGE = "/api/v1/subscriptions/{}/usage/"


def test_right_after_a_boundary_the_read_and_generate_follow_the_clock(client, catalog):
    subscribe(client, "sub-clock", "pro", OCT_1)
    with time_machine.travel(datetime(2026, 10, 20, tzinfo=UTC), tick=False):
        record(client, "sub-clock", "tokens", [(datetime(2026, 10, 20, tzinfo=UTC), {"tokens": 9})])
    with time_machine.travel(JUST_AFTER_NOV_1, tick=False):
        record(
            client,
            "sub-clock",
            "api_calls",
            [(datetime(2026, 11, 1, 0, 1, tzinfo=UTC), {}) for _ in range(3)],
        )
        # The beat job has not run: the stored period is still October's.
        assert Subscription.objects.get().current_period_end == NOV_1

        usage = client.get(USAGE.format("sub-clock")).json()
        subscription = client.get("/api/v1/subscriptions/sub-clock/").json()
        code, invoice = generate(client, "sub-clock")

    assert (usage["from"], usage["to"]) == ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    calls = next(m for m in usage["metrics"] if m["metric"] == "api_calls")
    assert (calls["units"], calls["amount_cents"]) == ("3", 1)  # 3 x 0.002 = 0.006 -> 1
    assert subscription["current_period_start"] == "2026-11-01T00:00:00Z"
    assert code == 201, invoice
    assert (invoice["period_start"], invoice["period_end"]) == (
        "2026-10-01T00:00:00Z",
        "2026-11-01T00:00:00Z",
    )
    assert SubscriptionPeriod.objects.get().reason == "renewed"


def test_a_cancellation_just_after_a_boundary_ends_the_new_period(client, catalog):
    """Before, the beat job then closed October as `canceled` and the subscription ended
    on 11-01, a cancellation made in November taking effect in the past."""
    subscribe(client, "sub-late-cancel", "pro", OCT_1)
    with time_machine.travel(JUST_AFTER_NOV_1, tick=False):
        body = client.post(
            "/api/v1/subscriptions/sub-late-cancel/cancel/", {"at_period_end": True}, format="json"
        ).json()

    assert body["status"] == "active" and body["cancel_at_period_end"] is True
    assert body["current_period_end"] == "2026-12-01T00:00:00Z"
    assert list(SubscriptionPeriod.objects.values_list("reason", "end")) == [("renewed", NOV_1)]


def test_after_a_plan_change_the_read_prices_each_phase_as_the_invoice_does(client, catalog):
    """The read used to rate the whole month's units at the current plan: 3,000 tokens once
    through the graduated tiers (1.20) and every call at the new plan's price."""
    premium = PlanFactory(code="premium", name="Premium", amount_cents=19900, currency="USD")
    ChargeFactory(plan=premium, metric=catalog.api_calls, properties={"amount": "0.01"})
    ChargeFactory(
        plan=premium, metric=catalog.tokens, charge_model="graduated", properties=GRADUATED_TOKENS
    )
    subscribe(client, "sub-change", "pro", OCT_1)
    with time_machine.travel(datetime(2026, 10, 16, tzinfo=UTC), tick=False):
        changed = client.patch(
            "/api/v1/subscriptions/sub-change/", {"plan": "premium"}, format="json"
        )
        assert changed.status_code == 200, changed.json()
    with time_machine.travel(datetime(2026, 10, 31, tzinfo=UTC), tick=False):
        record(
            client,
            "sub-change",
            "api_calls",
            [(datetime(2026, 10, 5, tzinfo=UTC), {})] * 100
            + [(datetime(2026, 10, 20, tzinfo=UTC), {})] * 100,
        )
        record(
            client,
            "sub-change",
            "tokens",
            [
                (datetime(2026, 10, 5, tzinfo=UTC), {"tokens": 1500}),
                (datetime(2026, 10, 20, tzinfo=UTC), {"tokens": 1500}),
            ],
        )
        usage = client.get(USAGE.format("sub-change")).json()
    with time_machine.travel(datetime(2026, 11, 2, tzinfo=UTC), tick=False):
        code, invoice = generate(client, "sub-change")

    assert code == 201, invoice
    metrics = {m["metric"]: m for m in usage["metrics"]}
    # api_calls: 100 at 0.002 on pro (20) + 100 at 0.01 on premium (100).
    # tokens: each phase 1,500: 500 past the free 1,000 at 0.0001 plus 1.00 = 1.05 (105).
    assert metrics["api_calls"]["amount_cents"] == 20 + 100
    assert metrics["tokens"]["amount_cents"] == 105 + 105
    assert [(f["plan"], f["amount_cents"]) for f in metrics["tokens"]["fees"]] == [
        ("pro", 105),
        ("premium", 105),
    ]
    charge_lines = [
        (description, cents)
        for description, cents in amounts(invoice)
        if description in ("api_calls", "tokens")
    ]
    assert charge_lines == [("api_calls", 20), ("tokens", 105), ("api_calls", 100), ("tokens", 105)]
    assert usage["amount_cents"] == sum(cents for _, cents in charge_lines)


def test_a_reactivation_keeps_started_at_and_counts_periods_from_the_restart(client, catalog):
    subscribe(client, "sub-back", "pro", OCT_1)
    with time_machine.travel(datetime(2026, 10, 10, tzinfo=UTC), tick=False):
        client.post(
            "/api/v1/subscriptions/sub-back/cancel/", {"at_period_end": False}, format="json"
        )
    restart = datetime(2026, 10, 20, 12, tzinfo=UTC)
    with time_machine.travel(restart, tick=False):
        body = client.post("/api/v1/subscriptions/sub-back/reactivate/").json()

    assert body["status"] == "active"
    assert body["started_at"] == "2026-10-01T00:00:00Z"
    assert body["billing_anchor_at"] == "2026-10-20T12:00:00Z"
    assert (body["current_period_start"], body["current_period_end"]) == (
        "2026-10-20T12:00:00Z",
        "2026-11-01T00:00:00Z",
    )
    assert Subscription.objects.get().started_at == OCT_1
