"""Coupons as Lago applies them (getlago/lago-api app/services/credits/
applied_coupons_service.rb, applied_coupon_service.rb), in hand-computed cents. acme pays
Pro (49.00 a month, no usage: its charges rate 0) from October 1, 2026."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.coupons.models import AppliedCoupon, Coupon
from billing.coupons.services import coupon_apply
from billing.invoicing.models import Invoice
from billing.invoicing.services import invoice_generate_for_period
from subscriptions.models import SubscriptionPeriod
from tests.factories import SubscriptionFactory
from tests.helpers.concurrency import race
from tests.helpers.invoicing import OCT_1, close_periods

pytestmark = pytest.mark.django_db
FEB_15 = datetime(2027, 2, 15, tzinfo=UTC)


def coupon(client, code: str, **fields) -> dict:
    response = client.post(
        "/api/v1/coupons/", {"code": code, "name": code.title(), **fields}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


def apply(client, code: str, customer: str = "acme", **extra):
    return client.post(
        "/api/v1/applied_coupons/",
        {"customer": customer, "coupon_code": code, **extra},
        format="json",
    )


def monthly_invoices(catalog, months_until=FEB_15) -> list[Invoice]:
    SubscriptionFactory(
        external_id="sub-c", customer=catalog.acme, plan=catalog.pro, start_at=OCT_1
    )
    close_periods(months_until)
    periods = SubscriptionPeriod.objects.filter(subscription__external_id="sub-c").order_by("start")
    return [invoice_generate_for_period(period=period)[0] for period in periods]


def coupon_lines(invoice: Invoice) -> list[tuple[str, int]]:
    return [
        (line.description, line.amount_cents) for line in invoice.lines.filter(fee_type="coupon")
    ]


def test_a_recurring_coupon_spans_three_periods(client, catalog):
    """10 % for 3 invoices: October, November and December take 4.90 off 49.00; January
    is charged in full, and the coupon is over."""
    coupon(
        client,
        "ten",
        coupon_type="percentage",
        percentage_rate="10",
        frequency="recurring",
        frequency_duration=3,
    )
    assert apply(client, "ten").status_code == 201

    invoices = monthly_invoices(catalog)

    assert [i.period_start.month for i in invoices] == [10, 11, 12, 1]
    assert [coupon_lines(i) for i in invoices] == [[("Coupon Ten", -490)]] * 3 + [[]]
    assert [
        (i.fees_amount_cents, i.coupons_amount_cents, i.subtotal_amount_cents) for i in invoices
    ] == [(4900, 490, 4410)] * 3 + [(4900, 0, 4900)]
    assert AppliedCoupon.objects.get().status == "terminated"


def test_each_step_of_the_totals_with_a_coupon_and_tax(client, catalog):
    """fees 4900 - 10 % coupon 490 = subtotal 4410; tax 20 % = 882; total 5292."""
    catalog.acme.tax_rate = Decimal(20)
    catalog.acme.save()
    coupon(client, "ten", coupon_type="percentage", percentage_rate="10", frequency="forever")
    apply(client, "ten")

    (october, *_) = monthly_invoices(catalog, datetime(2026, 11, 15, tzinfo=UTC))

    body = client.get(f"/api/v1/invoices/{october.pk}/").json()
    assert (body["fees_amount_cents"], body["coupons_amount_cents"]) == (4900, 490)
    assert (body["subtotal_amount_cents"], body["taxes_amount_cents"]) == (4410, 882)
    assert body["total_amount_cents"] == 5292
    assert sum(line["amount_cents"] for line in body["lines"]) == 4410


def test_a_fixed_once_coupon_carries_what_is_left_then_ends(client, catalog):
    """60.00 once: October takes 49.00 (never below zero), November the 11.00 left."""
    coupon(
        client,
        "sixty",
        coupon_type="fixed_amount",
        amount_cents=6000,
        amount_currency="USD",
        frequency="once",
    )
    apply(client, "sixty")

    invoices = monthly_invoices(catalog, datetime(2027, 1, 15, tzinfo=UTC))

    assert [coupon_lines(i) for i in invoices] == [
        [("Coupon Sixty", -4900)],
        [("Coupon Sixty", -1100)],
        [],
    ]
    assert invoices[0].total_amount_cents == 0


def test_two_coupons_apply_in_the_order_they_were_applied(client, catalog):
    """5.00 fixed, then 10 % of what is left: 49.00 - 5.00 = 44.00, 10 % = 4.40."""
    coupon(
        client,
        "five",
        coupon_type="fixed_amount",
        amount_cents=500,
        amount_currency="USD",
        frequency="forever",
    )
    coupon(client, "ten", coupon_type="percentage", percentage_rate="10", frequency="forever")
    apply(client, "five")
    apply(client, "ten")

    (october, *_) = monthly_invoices(catalog, datetime(2026, 11, 15, tzinfo=UTC))

    assert coupon_lines(october) == [("Coupon Five", -500), ("Coupon Ten", -440)]
    assert october.subtotal_amount_cents == 3960


def test_expired_or_terminated_coupons_stop_applying(client, catalog):
    coupon(
        client,
        "ten",
        coupon_type="percentage",
        percentage_rate="10",
        frequency="forever",
        expiration_at="2026-11-10T00:00:00Z",
    )
    coupon(
        client,
        "five",
        coupon_type="fixed_amount",
        amount_cents=500,
        amount_currency="USD",
        frequency="forever",
    )
    apply(client, "ten")
    apply(client, "five")
    assert client.post("/api/v1/coupons/five/terminate/").status_code == 200

    # October's invoice is made on November 15, after the expiry: neither applies.
    (october, *_) = monthly_invoices(catalog, datetime(2026, 11, 15, tzinfo=UTC))

    assert coupon_lines(october) == []
    refused = apply(client, "ten")
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "coupon_expired"


def test_bad_coupons_and_applications_are_4xx(client, catalog):
    assert (
        client.post(
            "/api/v1/coupons/",
            {"code": "x", "name": "X", "coupon_type": "fixed_amount", "frequency": "once"},
            format="json",
        ).status_code
        == 422
    )
    coupon(
        client,
        "eur",
        coupon_type="fixed_amount",
        amount_cents=500,
        amount_currency="EUR",
        frequency="once",
    )
    mismatch = apply(client, "eur")
    assert mismatch.status_code == 422
    assert mismatch.json()["errors"][0]["code"] == "currency_mismatch"
    assert apply(client, "nope").status_code == 404
    assert apply(client, "eur", customer="nobody").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_racing_applications_stop_at_the_redemption_limit(client, catalog):
    coupon(
        client,
        "one",
        coupon_type="percentage",
        percentage_rate="5",
        frequency="once",
        redemption_limit=1,
    )
    held = Coupon.objects.get(code="one")

    def take():
        try:
            coupon_apply(customer=catalog.acme, coupon=held)
        except Exception as exc:
            return getattr(exc, "code", repr(exc))
        return "applied"

    assert sorted(race([take, take])) == ["applied", "redemption_limit_reached"]
