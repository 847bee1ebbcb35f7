"""Invoices with the local engine: hand-computed amounts for every charge model and for
proration, idempotent generation (also racing), numbering, immutability, void, the PDF
and the billing run."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import IntegrityError, transaction

from billing.invoicing.billing_run import billing_run
from billing.invoicing.models import Invoice, InvoiceLine
from subscriptions.models import SubscriptionPeriod
from tests.factories import (
    BillableMetricFactory,
    ChargeFactory,
    InvoiceFactory,
    PlanFactory,
)
from tests.helpers.concurrency import race
from tests.helpers.invoicing import (
    NOV_1,
    NOV_15,
    OCT_1,
    amounts,
    close_periods,
    generate,
    record,
    subscribe,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _on_november_15():
    """These tests live on 2026-11-15, where close_periods puts them: October's period has
    ended and November's is open, also for generate, which follows the clock."""
    with time_machine.travel(NOV_15, tick=True):
        yield


def test_mid_period_start_is_prorated_and_usage_is_rated_to_the_cent(client, catalog):
    from customers.models import Customer

    Customer.objects.filter(external_id="acme").update(tax_rate="20.00")
    subscribe(client, "sub-mid", "pro", datetime(2026, 10, 16, tzinfo=UTC))
    record(
        client,
        "sub-mid",
        "api_calls",
        [(datetime(2026, 10, 20, 12, tzinfo=UTC), {}) for _ in range(250)],
    )
    record(
        client,
        "sub-mid",
        "tokens",
        [(datetime(2026, 10, 21, tzinfo=UTC), {"tokens": 1500}) for _ in range(2)],
    )
    close_periods()

    code, invoice = generate(client, "sub-mid")

    assert code == 201, invoice
    # 16 of October's 31 days of 49.00: 2529.03 -> 2529. 250 calls at 0.002: 50. 3,000
    # tokens: the first 1,000 free, then 2,000 at 0.0001 plus the tier's flat 1.00: 120.
    assert amounts(invoice) == [
        ("Pro in arrears", 2529),
        ("api_calls", 50),
        ("tokens", 120),
    ]
    assert invoice["lines"][1]["units"] == "250.000000000000"
    assert invoice["subtotal_amount_cents"] == 2699
    assert invoice["tax_rate"] == "20.00"
    assert invoice["taxes_amount_cents"] == 540  # 539.8, rounded half-up once
    assert invoice["total_amount_cents"] == 3239
    assert (invoice["period_start"], invoice["period_end"]) == (
        "2026-10-16T00:00:00Z",
        "2026-11-01T00:00:00Z",
    )
    assert invoice["status"] == "draft" and invoice["number"] is None


def test_an_upgrade_prorates_both_plans_and_rates_usage_under_each(client, catalog):
    with time_machine.travel(OCT_1, tick=False):
        subscribe(client, "sub-up", "pro", OCT_1)
    with time_machine.travel(datetime(2026, 10, 11, tzinfo=UTC), tick=False):
        response = client.patch(
            "/api/v1/subscriptions/sub-up/", {"plan": "business"}, format="json"
        )
        assert response.status_code == 200, response.json()
    early = [(datetime(2026, 10, 5, 1, tzinfo=UTC), {}) for _ in range(100)]
    late = [(datetime(2026, 10, 20, tzinfo=UTC), {}) for _ in range(300)]
    record(client, "sub-up", "api_calls", early + late)
    close_periods()

    code, invoice = generate(client, "sub-up")

    assert code == 201
    # Pro for 10 of 31 days: 1580.65 -> 1581. Business for 21 of 31: 6706.45 -> 6706.
    # 100 calls before the upgrade (0.20) and 300 after (0.60), each rated under the plan
    # of its phase.
    assert amounts(invoice) == [
        ("Pro in arrears", 1581),
        ("api_calls", 20),
        ("tokens", 0),
        ("Business in arrears", 6706),
        ("api_calls", 60),
        ("tokens", 0),
    ]
    assert invoice["total_amount_cents"] == 1581 + 20 + 6706 + 60


@pytest.fixture
def models_plan(catalog):
    storage = BillableMetricFactory(code="storage", aggregation="max", field_name="gb")
    seats = BillableMetricFactory(code="seats", aggregation="unique_count", field_name="user")
    payments = BillableMetricFactory(code="payments", aggregation="sum", field_name="amount")
    plan = PlanFactory(code="usage-only", name="Usage only", amount_cents=0, currency="USD")
    ChargeFactory(
        plan=plan,
        metric=storage,
        charge_model="volume",
        properties={
            "volume_ranges": [
                {"from_value": 0, "to_value": 100, "per_unit_amount": "0.10", "flat_amount": "0"},
                {
                    "from_value": 101,
                    "to_value": None,
                    "per_unit_amount": "0.05",
                    "flat_amount": "5",
                },
            ]
        },
    )
    ChargeFactory(
        plan=plan,
        metric=seats,
        charge_model="package",
        properties={"amount": "5", "package_size": 10, "free_units": 5},
    )
    ChargeFactory(
        plan=plan,
        metric=payments,
        charge_model="percentage",
        properties={
            "rate": "2.5",
            "fixed_amount": "0.10",
            "free_units_per_events": 1,
            "per_transaction_min_amount": "0.20",
            "per_transaction_max_amount": "5",
        },
    )


def test_volume_package_and_percentage_match_a_hand_computation(client, models_plan):
    subscribe(client, "sub-models", "usage-only", OCT_1)
    day = datetime(2026, 10, 10, tzinfo=UTC)
    record(client, "sub-models", "storage", [(day, {"gb": 40}), (day, {"gb": 150})])
    record(client, "sub-models", "seats", [(day, {"user": f"u{i % 23}"}) for i in range(60)])
    record(
        client,
        "sub-models",
        "payments",
        [
            (datetime(2026, 10, 2, tzinfo=UTC), {"amount": 100}),
            (datetime(2026, 10, 3, tzinfo=UTC), {"amount": 10}),
            (datetime(2026, 10, 4, tzinfo=UTC), {"amount": 1000}),
            (datetime(2026, 10, 5, tzinfo=UTC), {"amount": 4}),
        ],
    )
    close_periods()

    _, invoice = generate(client, "sub-models", period_start=OCT_1, period_end=NOV_1)

    assert amounts(invoice) == [
        ("Usage only in arrears", 0),
        # volume: max 150 GB falls in the second range: 150 * 0.05 + 5 = 12.50
        ("storage", 1250),
        # package: 23 seats, 5 free, 18 in started packages of 10: 2 * 5.00
        ("seats", 1000),
        # percentage: the first event free; 10 -> 0.35; 1000 -> 25.10 capped at 5.00;
        # 4 -> 0.20 (0.20 is the minimum): 5.55
        ("payments", 555),
    ]


def test_generation_is_idempotent_per_period_and_refuses_open_periods(client, catalog):
    subscribe(client, "sub-idem", "pro", OCT_1)
    with time_machine.travel(datetime(2026, 10, 31, 23, 59, tzinfo=UTC), tick=False):
        code, _ = generate(client, "sub-idem")
    assert code == 422  # nothing has closed yet
    # No close_periods (the beat job): a period that has ended is closed by generate itself.

    first_code, first = generate(client, "sub-idem")
    again_code, again = generate(client, "sub-idem", period_start=OCT_1, period_end=NOV_1)
    open_code, open_body = generate(
        client, "sub-idem", period_start=NOV_1, period_end=datetime(2026, 12, 1, tzinfo=UTC)
    )

    assert (first_code, again_code) == (201, 200)
    assert again["id"] == first["id"]
    assert open_code == 422 and open_body["errors"][0]["code"] == "period_not_closed"
    assert Invoice.objects.count() == 1
    assert SubscriptionPeriod.objects.get().billed_at is not None


@pytest.mark.django_db(transaction=True)
def test_racing_generations_make_one_invoice(client, catalog):
    subscribe(client, "sub-race", "pro", OCT_1)
    close_periods()

    def worker() -> tuple[int, dict]:
        from rest_framework.test import APIClient

        other = APIClient()
        other.credentials(HTTP_AUTHORIZATION=client._credentials["HTTP_AUTHORIZATION"])
        return generate(other, "sub-race")

    results = race([worker] * 8)

    codes = sorted(code for code, _ in results)
    assert codes.count(201) == 1 and codes.count(200) == 7, codes
    assert len({body["id"] for _, body in results}) == 1
    assert Invoice.objects.count() == 1
    assert InvoiceLine.objects.count() == 3


def test_finalize_numbers_sequentially_and_the_database_refuses_changes(client, catalog):
    for name in ("a", "b", "c"):
        subscribe(client, f"sub-{name}", "pro", OCT_1)
    close_periods()
    ids = [generate(client, f"sub-{name}")[1]["id"] for name in ("a", "b", "c")]

    numbers = []
    for invoice_id in ids:
        response = client.post(f"/api/v1/invoices/{invoice_id}/finalize/")
        assert response.status_code == 200, response.json()
        numbers.append(response.json()["number"])
        assert response.json()["status"] == "finalized"
        assert response.json()["issued_at"] is not None
    again = client.post(f"/api/v1/invoices/{ids[0]}/finalize/")

    assert numbers == ["AIP-000001", "AIP-000002", "AIP-000003"]
    assert again.status_code == 409 and again.json()["errors"][0]["code"] == "invalid_transition"
    invoice = Invoice.objects.get(pk=ids[0])
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(total_amount_cents=1, subtotal_amount_cents=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.filter(invoice=invoice).update(amount_cents=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.filter(invoice=invoice).delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).delete()
    invoice.refresh_from_db()
    assert invoice.total_amount_cents == 4900 and invoice.lines.count() == 3


def test_a_rolled_back_finalization_leaves_no_gap():
    from billing.invoicing.services import invoice_finalize

    x, y = InvoiceFactory(), InvoiceFactory()

    with pytest.raises(RuntimeError), transaction.atomic():
        invoice_finalize(invoice=x)
        raise RuntimeError("crash after numbering")
    invoice_finalize(invoice=y)

    y.refresh_from_db()
    x.refresh_from_db()
    assert y.number == "AIP-000001" and x.number is None and x.status == "draft"


def test_void_and_list_filters(client, catalog):
    subscribe(client, "sub-v1", "pro", OCT_1)
    subscribe(client, "sub-v2", "starter", OCT_1)
    close_periods()
    v1 = generate(client, "sub-v1")[1]["id"]
    v2 = generate(client, "sub-v2")[1]["id"]
    client.post(f"/api/v1/invoices/{v1}/finalize/")

    voided = client.post(f"/api/v1/invoices/{v2}/void/")
    twice = client.post(f"/api/v1/invoices/{v2}/void/")
    Invoice.objects.filter(pk=v1).update(payment_status="succeeded")
    paid = client.post(f"/api/v1/invoices/{v1}/void/")

    assert voided.status_code == 200 and voided.json()["status"] == "voided"
    assert twice.status_code == 409
    assert paid.status_code == 409 and paid.json()["errors"][0]["code"] == "invoice_paid"

    def listed(query: str) -> list[str]:
        response = client.get(f"/api/v1/invoices/?{query}")
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert listed("status=voided") == [v2]
    assert listed("status=finalized&payment_status=succeeded") == [v1]
    assert listed("subscription=sub-v1") == [v1]
    assert sorted(listed("customer=acme&currency=usd")) == sorted([v1, v2])
    assert listed("issued_after=2000-01-01T00:00:00Z") == [v1]
    assert listed("issued_before=2000-01-01T00:00:00Z") == []
    assert client.get("/api/v1/invoices/?status=paid").status_code == 400
    # A voided period may be invoiced again.
    assert generate(client, "sub-v2")[0] == 201


def test_the_pdf_is_a_pdf_with_the_number(client):
    from billing.invoicing.services import invoice_finalize

    invoice_id = invoice_finalize(invoice=InvoiceFactory()).pk

    response = client.get(f"/api/v1/invoices/{invoice_id}/pdf/", HTTP_ACCEPT="application/pdf")
    missing = client.get(
        "/api/v1/invoices/00000000-0000-0000-0000-000000000000/pdf/",
        HTTP_ACCEPT="application/pdf",
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert "AIP-000001" in response["Content-Disposition"]
    assert missing.status_code == 404
    assert missing["Content-Type"] == "application/json"
    assert missing.json()["errors"][0]["code"] == "not_found"


def test_the_billing_run_invoices_every_closed_period_once(client, catalog):
    for index in range(7):
        subscribe(client, f"sub-run-{index}", "pro" if index % 2 else "starter", OCT_1)
    close_periods()

    first = billing_run(batch_size=3)
    second = billing_run(batch_size=3)

    assert (first.periods, first.generated, first.finalized, first.failed) == (7, 7, 7, 0)
    assert (second.periods, second.generated) == (0, 0)
    invoices = Invoice.objects.all()
    assert invoices.count() == 7
    assert {i.status for i in invoices} == {"finalized"}
    assert len({i.number for i in invoices}) == 7
    assert not SubscriptionPeriod.objects.filter(billed_at__isnull=True).exists()


def test_plans_stay_frozen_until_their_time_is_invoiced(client, catalog):
    with time_machine.travel(OCT_1, tick=False):
        subscribe(client, "sub-frozen", "starter", OCT_1)
    with time_machine.travel(datetime(2026, 10, 11, tzinfo=UTC), tick=False):
        client.patch("/api/v1/subscriptions/sub-frozen/", {"plan": "business"}, format="json")

    blocked = client.patch("/api/v1/plans/starter/", {"amount_cents": 1}, format="json")
    close_periods()
    billing_run()
    allowed = client.patch("/api/v1/plans/starter/", {"amount_cents": 1}, format="json")

    assert blocked.status_code == 409 and blocked.json()["errors"][0]["code"] == "plan_in_use"
    assert allowed.status_code == 200
    # The invoice kept the price it was rated with.
    line = InvoiceLine.objects.get(plan_code="starter", fee_type="subscription")
    assert line.amount_cents == 613  # 1900 * 10 / 31 = 612.9


def test_usage_for_an_invoiced_period_is_refused_but_replays_still_answer(client, catalog):
    subscribe(client, "sub-late", "pro", OCT_1)
    early = {
        "transaction_id": "late-0",
        "subscription": "sub-late",
        "metric": "api_calls",
        "timestamp": "2026-10-20T00:00:00Z",
    }
    assert client.post("/api/v1/usage/", early, format="json").status_code == 201
    close_periods()
    # Late usage for a closed period not yet invoiced still counts.
    late_ok = client.post("/api/v1/usage/", {**early, "transaction_id": "late-1"}, format="json")
    assert late_ok.status_code == 201
    generate(client, "sub-late")

    refused = client.post("/api/v1/usage/", {**early, "transaction_id": "late-2"}, format="json")
    replay = client.post("/api/v1/usage/", early, format="json")
    current = client.post(
        "/api/v1/usage/",
        {**early, "transaction_id": "late-3", "timestamp": "2026-11-02T00:00:00Z"},
        format="json",
    )
    batch = client.post(
        "/api/v1/usage/batch/",
        {"events": [{**early, "transaction_id": "late-4"}, early]},
        format="json",
    )

    assert refused.status_code == 409
    assert refused.json()["errors"][0]["code"] == "period_closed"
    assert replay.status_code == 200
    assert current.status_code == 201
    results = batch.json()["results"]
    assert [(r["status"], [e["code"] for e in r["errors"]]) for r in results] == [
        ("invalid", ["period_closed"]),
        ("duplicate", []),
    ]
    invoice = Invoice.objects.get()
    assert invoice.lines.get(description="api_calls").units == 2


def test_a_termination_mid_period_is_prorated(client, catalog):
    with time_machine.travel(OCT_1, tick=False):
        subscribe(client, "sub-end", "pro", OCT_1)
    with time_machine.travel(datetime(2026, 10, 21, tzinfo=UTC), tick=False):
        response = client.post(
            "/api/v1/subscriptions/sub-end/cancel/", {"at_period_end": False}, format="json"
        )
        assert response.status_code == 200, response.json()

    code, invoice = generate(client, "sub-end")

    assert code == 201
    # Lago counts the termination day: October 1 to 21, 21 of 31 days of 49.00:
    # 3319.35 -> 3319 (Fees::SubscriptionService#terminated_amount).
    assert amounts(invoice)[0] == ("Pro in arrears", 3319)
    assert (invoice["period_start"], invoice["period_end"]) == (
        "2026-10-01T00:00:00Z",
        "2026-10-21T00:00:00Z",
    )


def test_pay_in_advance_bills_ahead_and_credits_an_upgrade(client, catalog):
    """Lago bills a pay-in-advance plan when its period starts (Subscriptions::
    ActivateService#bill_subscription; the renewal's full_period_amount), and an upgrade at
    once (#activate_for_upgrade: Fees::SubscriptionService#upgraded_amount, and a credit
    note for the old plan's unused days, CreditNotes::CreateFromTermination)."""
    for code, amount in (("advance", 3000), ("advance-plus", 6000)):
        PlanFactory(code=code, name=code.title(), amount_cents=amount, pay_in_advance=True)
    oct_16 = datetime(2026, 10, 16, tzinfo=UTC)
    nov_11 = datetime(2026, 11, 11, tzinfo=UTC)
    with time_machine.travel(oct_16, tick=False):
        subscribe(client, "sub-adv", "advance", oct_16)
    close_periods(datetime(2026, 11, 5, tzinfo=UTC))
    with time_machine.travel(nov_11, tick=False):
        response = client.patch(
            "/api/v1/subscriptions/sub-adv/", {"plan": "advance-plus"}, format="json"
        )
        assert response.status_code == 200, response.json()
    close_periods(datetime(2026, 12, 15, tzinfo=UTC))

    _, opening = generate(client, "sub-adv", period_start=oct_16, period_end=oct_16)
    _, october = generate(client, "sub-adv", period_start=oct_16, period_end=NOV_1)
    _, upgrade = generate(client, "sub-adv", period_start=nov_11, period_end=nov_11)
    _, november = generate(
        client, "sub-adv", period_start=NOV_1, period_end=datetime(2026, 12, 1, tzinfo=UTC)
    )

    # At the start: October 16 to 31, 16 of 31 days of 30.00: 1548.39 -> 1548.
    assert amounts(opening) == [("Advance in advance", 1548)]
    # October's end bills November ahead, not October again.
    assert amounts(october) == [("Advance in advance (next period)", 3000)]
    # The upgrade day goes to the new plan: November 11 to 30, 20 of 30 days, credited on
    # Advance (-20.00) and billed on Advance-plus (40.00), at once.
    assert amounts(upgrade) == [
        ("Advance unused time (credit)", -2000),
        ("Advance-Plus in advance", 4000),
    ]
    # November's end: both plans were paid ahead; December is billed ahead on Advance-plus.
    assert amounts(november) == [("Advance-Plus in advance (next period)", 6000)]
    assert november["total_amount_cents"] == 6000


def test_a_crash_between_generation_and_finalization_leaves_the_period_queued(
    client, catalog, monkeypatch
):
    from billing.invoicing import billing_run as run_module
    from billing.invoicing import pages

    subscribe(client, "sub-crash", "pro", OCT_1)
    close_periods()

    def crash(*args, **kwargs):
        raise RuntimeError("database went away")

    # The page's bulk issue fails, then the period's own issue as the run retries it alone.
    monkeypatch.setattr(pages, "issue_many", crash)
    monkeypatch.setattr(run_module, "invoice_finalize", crash)
    crashed = billing_run()
    monkeypatch.undo()
    resumed = billing_run()

    assert (crashed.failed, crashed.finalized) == (1, 0)
    assert (resumed.generated, resumed.finalized, resumed.failed) == (1, 1, 0)
    assert Invoice.objects.get().status == "finalized"


def test_the_billing_run_waits_for_the_grace_period_and_issues_api_drafts(
    client, catalog, settings
):
    settings.INVOICE_GRACE_MINUTES = 60
    subscribe(client, "sub-grace", "pro", OCT_1)
    subscribe(client, "sub-draft", "starter", OCT_1)
    close_periods()
    draft_id = generate(client, "sub-draft")[1]["id"]
    # A period that ended 30 minutes ago is still open to late usage.
    from django.utils import timezone

    just_ended = timezone.now() - timezone.timedelta(minutes=30)
    SubscriptionPeriod.objects.filter(subscription__external_id="sub-grace").update(end=just_ended)

    report = billing_run()

    assert report.generated == 0 and report.finalized == 1
    assert Invoice.objects.get(pk=draft_id).status == "finalized"
    assert not Invoice.objects.filter(subscription__external_id="sub-grace").exists()


def test_a_prepaid_period_cut_short_credits_the_unused_time(client, catalog):
    PlanFactory(code="advance", name="Advance", amount_cents=3000, pay_in_advance=True)
    with time_machine.travel(OCT_1, tick=False):
        subscribe(client, "sub-cut", "advance", OCT_1)
    close_periods(datetime(2026, 11, 5, tzinfo=UTC))
    with time_machine.travel(datetime(2026, 11, 16, tzinfo=UTC), tick=False):
        client.post(
            "/api/v1/subscriptions/sub-cut/cancel/", {"at_period_end": False}, format="json"
        )

    _, november = generate(
        client, "sub-cut", period_start=NOV_1, period_end=datetime(2026, 11, 16, tzinfo=UTC)
    )

    # November was billed whole on October's invoice. Lago counts the termination day as
    # used and credits November 17 to 30 (CreditNotes::CreateFromTermination
    # #remaining_duration): 14 of 30 days of 30.00.
    assert amounts(november) == [("Advance unused time (credit)", -1400)]
    assert november["total_amount_cents"] == -1400
    finalized = client.post(f"/api/v1/invoices/{november['id']}/finalize/").json()
    # A credit is owed: never charged, it goes to the customer's prepaid credits.
    assert (finalized["payment_status"], finalized["amount_due_cents"]) == ("succeeded", 0)
    assert finalized["payment_blocked_reason"] == ""
    assert finalized["next_payment_attempt_at"] is None
    wallet = client.get("/api/v1/customers/acme/wallet/").json()
    assert wallet["balance_cents"] == 1400
    assert wallet["wallets"][0]["name"] == "Credit balance"


def test_a_line_cannot_be_moved_off_a_finalized_invoice(catalog):
    on_pro = {"subscription__customer": catalog.acme, "subscription__plan": catalog.pro}
    issued = InvoiceFactory(**on_pro, finalized=True).pk  # its 3 lines, then issued
    draft = InvoiceFactory(**on_pro).pk

    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.filter(invoice_id=issued).update(invoice_id=draft)
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.filter(invoice_id=draft, position=1).update(invoice_id=issued)

    assert InvoiceLine.objects.filter(invoice_id=issued).count() == 3


def test_billing_progress_is_in_the_metrics(client, catalog):
    subscribe(client, "sub-metrics", "pro", OCT_1)
    close_periods()

    before = client.get("/metrics").content.decode()
    billing_run()
    after = client.get("/metrics").content.decode()

    assert "billing_periods_unbilled 1.0" in before
    assert "billing_periods_unbilled 0.0" in after
    assert 'invoices_awaiting_payment{payment_status="pending"} 1.0' in after
    assert 'billing_run_periods_total{outcome="invoiced"}' in after


def test_graduated_percentage_and_dynamic_on_an_invoice(client, catalog):
    """graduated_percentage_service.rb and dynamic_service.rb on a closed period's invoice
    (its lines keep the model's name, 20 characters for graduated_percentage)."""
    plan = PlanFactory(code="new-models", name="New models", amount_cents=0, currency="USD")
    spend = BillableMetricFactory(code="spend", aggregation="sum", field_name="amount")
    llm = BillableMetricFactory(code="llm", aggregation="sum", field_name="tokens")
    ChargeFactory(
        plan=plan,
        metric=spend,
        charge_model="graduated_percentage",
        properties={
            "graduated_percentage_ranges": [
                {"from_value": 0, "to_value": 100, "rate": "5", "flat_amount": "0"},
                {"from_value": 101, "to_value": None, "rate": "2", "flat_amount": "10"},
            ]
        },
    )
    ChargeFactory(plan=plan, metric=llm, charge_model="dynamic", properties={})
    subscribe(client, "sub-new", "new-models", OCT_1)
    day = datetime(2026, 10, 10, tzinfo=UTC)
    record(client, "sub-new", "spend", [(day, {"amount": 80}), (day, {"amount": 70})])
    events = [
        {
            "transaction_id": f"llm-{i}",
            "subscription": "sub-new",
            "metric": "llm",
            "timestamp": day.isoformat(),
            "properties": {"tokens": 10},
            "precise_total_amount_cents": cents,
        }
        for i, cents in enumerate(("250.25", "99.5"))
    ]
    response = client.post("/api/v1/usage/batch/", {"events": events}, format="json")
    assert {r["status"] for r in response.json()["results"]} == {"created"}
    close_periods()

    _, invoice = generate(client, "sub-new", period_start=OCT_1, period_end=NOV_1)

    assert amounts(invoice) == [
        ("New models in arrears", 0),
        # 150: 100 * 5% + (150 - 101 + 1) * 2% + 10 = 5 + 1 + 10 (the scenario of
        # spec/scenarios/current_usage/by_charge_model/graduated_percentage_spec.rb)
        ("spend", 1600),
        # 250.25 + 99.5 = 349.75 cents -> 3.4975 -> 3.50
        ("llm", 350),
    ]
    lines = {line["description"]: line for line in invoice["lines"]}
    assert lines["spend"]["charge_model"] == "graduated_percentage"
