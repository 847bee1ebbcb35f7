"""GET /invoices/preview/?subscription=: the current period's invoice as of now, rated by
the path the real invoice takes, so on the same usage the two agree to the cent (issue 13,
"the usage read, the invoice preview and the invoice share one rating path")."""

from datetime import UTC, datetime

import pytest
import time_machine

from billing.invoicing.models import Invoice
from tests.factories import ChargeFactory, PlanFactory
from tests.helpers.catalog import GRADUATED_TOKENS
from tests.helpers.invoicing import OCT_1, amounts, generate, record, subscribe

pytestmark = pytest.mark.django_db

PREVIEW = "/api/v1/invoices/preview/"


def test_the_preview_is_the_invoice_the_period_gets(client, read_only_client, catalog):
    from customers.models import Customer

    Customer.objects.filter(external_id="acme").update(tax_rate="20.00")
    premium = PlanFactory(code="premium", name="Premium", amount_cents=19900, currency="USD")
    ChargeFactory(plan=premium, metric=catalog.api_calls, properties={"amount": "0.01"})
    ChargeFactory(
        plan=premium, metric=catalog.tokens, charge_model="graduated", properties=GRADUATED_TOKENS
    )
    subscribe(client, "sub-preview", "pro", OCT_1)
    with time_machine.travel(datetime(2026, 10, 16, tzinfo=UTC), tick=False):
        client.patch("/api/v1/subscriptions/sub-preview/", {"plan": "premium"}, format="json")
    with time_machine.travel(datetime(2026, 10, 25, tzinfo=UTC), tick=False):
        record(
            client,
            "sub-preview",
            "api_calls",
            [(datetime(2026, 10, 5, tzinfo=UTC), {})] * 100
            + [(datetime(2026, 10, 20, tzinfo=UTC), {})] * 100,
        )
        preview = read_only_client.get(PREVIEW, {"subscription": "sub-preview"})
        stored_before = Invoice.objects.count()
    with time_machine.travel(datetime(2026, 11, 2, tzinfo=UTC), tick=False):
        code, invoice = generate(client, "sub-preview")

    assert preview.status_code == 200, preview.json()
    body = preview.json()
    assert stored_before == 0  # a preview stores nothing
    assert code == 201, invoice
    assert (body["period_start"], body["period_end"]) == (
        invoice["period_start"],
        invoice["period_end"],
    )
    assert [(line["description"], line["amount_cents"]) for line in body["lines"]] == amounts(
        invoice
    )
    for key in ("subtotal_amount_cents", "taxes_amount_cents", "total_amount_cents"):
        assert body[key] == invoice[key], key
    # Pro 15 of 31 days of 49.00 (2371), premium 16 of 31 of 199.00 (10271); 100 calls on
    # each plan (20, 100); no tokens: the graduated first tier has no flat amount.
    assert body["subtotal_amount_cents"] == 2371 + 20 + 10271 + 100


def test_a_preview_needs_a_live_subscription(client, catalog):
    subscribe(client, "sub-ended", "pro", OCT_1)
    client.post("/api/v1/subscriptions/sub-ended/cancel/", {"at_period_end": False}, format="json")

    ended = client.get(PREVIEW, {"subscription": "sub-ended"})
    unknown = client.get(PREVIEW, {"subscription": "nobody"})
    missing = client.get(PREVIEW)

    assert ended.status_code == 422
    assert ended.json()["errors"][0]["code"] == "no_current_period"
    assert unknown.status_code == 404
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["attr"] == "subscription"
