"""The aggregate of a period equals a hand computation, for each aggregation type."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import (
    BillableMetricFactory,
    ChargeFactory,
    CustomerFactory,
    PlanFactory,
    SubscriptionFactory,
)

pytestmark = pytest.mark.django_db

METRICS = [
    ("calls", "count", ""),
    ("tokens", "sum", "tokens"),
    ("peak_gb", "max", "gb"),
    ("users", "unique_count", "user"),
    ("seats", "latest", "seats"),
]


@pytest.fixture
def metered(db):
    """A subscription started two hours ago, anniversary-billed, on a plan with a charge on
    each metric: 0.50 a unit, but a graduated price on tokens."""
    plan = PlanFactory(code="metered", name="Metered", amount_cents=0, currency="USD")
    for code, aggregation, field_name in METRICS:
        metric = BillableMetricFactory(
            code=code, name=code, aggregation=aggregation, field_name=field_name
        )
        if code == "tokens":
            ChargeFactory(
                plan=plan,
                metric=metric,
                charge_model="graduated",
                properties={
                    "graduated_ranges": [
                        {
                            "from_value": 0,
                            "to_value": 100,
                            "per_unit_amount": "0",
                            "flat_amount": "0",
                        },
                        {
                            "from_value": 101,
                            "to_value": None,
                            "per_unit_amount": "0.01",
                            "flat_amount": "1",
                        },
                    ]
                },
            )
        else:
            ChargeFactory(plan=plan, metric=metric, properties={"amount": "0.5"})
    start = timezone.now() - timedelta(hours=2)
    SubscriptionFactory(
        external_id="sub-1",
        customer=CustomerFactory(external_id="acme"),
        plan=plan,
        billing_time="anniversary",
        start_at=start,
    )
    return start


def record(client, tid, metric, at, **properties):
    response = client.post(
        "/api/v1/usage/",
        {
            "transaction_id": tid,
            "subscription": "sub-1",
            "metric": metric,
            "timestamp": at.isoformat(),
            "properties": properties,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()


def test_each_aggregation_matches_a_hand_computation(client, metered):
    t = metered + timedelta(minutes=1)
    for i in range(3):
        record(client, f"c{i}", "calls", t)
    record(client, "t1", "tokens", t, tokens=70)
    record(client, "t2", "tokens", t, tokens="80.5")
    record(client, "g1", "peak_gb", t, gb=3)
    record(client, "g2", "peak_gb", t + timedelta(minutes=1), gb="7.25")
    record(client, "g3", "peak_gb", t + timedelta(minutes=2), gb=5)
    for i, user in enumerate(["ann", "bob", "ann", "cy"]):
        record(client, f"u{i}", "users", t, user=user)
    record(client, "s1", "seats", t, seats=10)
    record(client, "s2", "seats", t + timedelta(minutes=5), seats=4)
    record(client, "s3", "seats", t + timedelta(minutes=3), seats=12)  # late, but older

    body = client.get("/api/v1/subscriptions/sub-1/usage/").json()
    got = {m["metric"]: (Decimal(m["units"]), m["amount_cents"]) for m in body["metrics"]}
    assert got == {
        "calls": (Decimal(3), 150),  # 3 * 0.5
        "tokens": (Decimal("150.5"), 151),  # 100 free, then 1 + 50.5 * 0.01 = 1.505 -> 1.51
        "peak_gb": (Decimal("7.25"), 363),  # 3.625 -> 3.63
        "users": (Decimal(3), 150),
        "seats": (Decimal(4), 200),  # the latest by timestamp, not by arrival
    }
    assert body["amount_cents"] == sum(amount for _, amount in got.values())
    assert body["currency"] == "USD"


def test_the_period_bounds_what_is_counted(client, metered):
    record(client, "early", "calls", metered + timedelta(minutes=1))
    record(client, "later", "calls", metered + timedelta(minutes=90))
    cut = (metered + timedelta(minutes=30)).isoformat()
    before = client.get("/api/v1/subscriptions/sub-1/usage/", {"to": cut}).json()
    after = client.get("/api/v1/subscriptions/sub-1/usage/", {"from": cut}).json()
    units = lambda body: {m["metric"]: m["units"] for m in body["metrics"]}["calls"]  # noqa: E731
    assert Decimal(units(before)) == 1 and Decimal(units(after)) == 1
    bad = client.get("/api/v1/subscriptions/sub-1/usage/", {"from": cut, "to": cut})
    assert bad.status_code == 400
