"""BILLING_ENGINE=lago: Lago's invoices are mirrored (pull), reconciled against our rating,
collected through Stripe (localstripe) and their payment reported back to Lago; generating
an invoice for a period Lago has not invoiced asks Lago for a preview."""

import pytest

from billing.invoicing.lago_mirror import lago_invoices_pull
from billing.invoicing.models import Invoice
from tests.helpers.invoicing import NOV_1, OCT_1
from tests.helpers.outbox import drain_outbox

pytestmark = pytest.mark.django_db


def test_a_lago_invoice_is_mirrored_reconciled_collected_and_reported(lago_engine, client):
    issued = lago_engine.issue_invoice(
        external_subscription_id="sub-lago",
        charges_from=OCT_1,
        charges_to=NOV_1,
        fees_amount_cents=4900,
    )

    assert lago_invoices_pull() == 1
    invoice = Invoice.objects.get(lago_id=issued["lago_id"])
    assert (invoice.engine, invoice.status, invoice.total_amount_cents) == (
        "lago",
        "finalized",
        4900,
    )
    assert (invoice.period_start, invoice.period_end) == (OCT_1, NOV_1)
    assert invoice.reconciliation == "matched", invoice.reconciliation_note
    assert invoice.lago_number == issued["number"]

    drain_outbox()  # collect through Stripe, then report to Lago

    invoice.refresh_from_db()
    assert invoice.payment_status == "succeeded"
    assert lago_engine.invoices[issued["lago_id"]]["payment_status"] == "succeeded"
    reports = [
        r
        for r in lago_engine.requests
        if r["method"] == "PUT" and r["path"] == f"/api/v1/invoices/{issued['lago_id']}"
    ]
    assert [r["json"] for r in reports] == [{"invoice": {"payment_status": "succeeded"}}]
    # Pulled again: the same invoice, not a second one, and no second charge.
    assert lago_invoices_pull() == 1
    drain_outbox()
    assert Invoice.objects.filter(lago_id=issued["lago_id"]).count() == 1
    assert invoice.attempts.count() == 1
    listed = client.get("/api/v1/invoices/?subscription=sub-lago").json()["results"]
    assert [row["lago_id"] for row in listed] == [issued["lago_id"]]


def test_a_difference_with_our_rating_is_flagged_for_staff(lago_engine):
    issued = lago_engine.issue_invoice(
        external_subscription_id="sub-lago",
        charges_from=OCT_1,
        charges_to=NOV_1,
        fees_amount_cents=5100,
    )

    lago_invoices_pull()

    invoice = Invoice.objects.get(lago_id=issued["lago_id"])
    assert invoice.reconciliation == "mismatch"
    assert "5100" in invoice.reconciliation_note and "4900" in invoice.reconciliation_note


def test_generate_previews_a_period_lago_has_not_invoiced(lago_engine, client):
    first = client.post("/api/v1/invoices/generate/", {"subscription": "sub-lago"}, format="json")
    again = client.post("/api/v1/invoices/generate/", {"subscription": "sub-lago"}, format="json")

    assert first.status_code == 201, first.json()
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    body = first.json()
    assert (body["engine"], body["status"], body["lago_id"]) == ("lago", "draft", None)
    assert body["total_amount_cents"] == 4900
    assert any(r["path"] == "/api/v1/invoices/preview" for r in lago_engine.requests)

    # When Lago issues the real invoice, the preview gives way to it.
    issued = lago_engine.issue_invoice(
        external_subscription_id="sub-lago",
        charges_from=NOV_1,
        charges_to=NOV_1.replace(month=12),
        fees_amount_cents=4900,
    )
    lago_invoices_pull()
    assert list(Invoice.objects.values_list("lago_id", flat=True)) == [
        __import__("uuid").UUID(issued["lago_id"])
    ]


def test_a_draft_follows_lago_until_finalized_then_is_charged_its_final_amount(lago_engine):
    issued = lago_engine.issue_invoice(
        external_subscription_id="sub-lago",
        charges_from=OCT_1,
        charges_to=NOV_1,
        fees_amount_cents=4000,
        status="draft",
    )
    lago_invoices_pull()
    invoice = Invoice.objects.get(lago_id=issued["lago_id"])
    assert (invoice.status, invoice.total_amount_cents) == ("draft", 4000)
    assert not invoice.attempts.exists()

    # Late usage during Lago's grace period, then Lago finalizes.
    issued.update(
        status="finalized",
        fees_amount_cents=4900,
        sub_total_excluding_taxes_amount_cents=4900,
        sub_total_including_taxes_amount_cents=4900,
        total_amount_cents=4900,
    )
    lago_invoices_pull()
    drain_outbox()

    invoice.refresh_from_db()
    assert (invoice.status, invoice.total_amount_cents, invoice.payment_status) == (
        "finalized",
        4900,
        "succeeded",
    )
    assert invoice.attempts.get().amount_cents == 4900
    assert invoice.reconciliation == "matched"


def test_a_void_in_lago_after_we_collected_is_flagged_not_applied(lago_engine):
    issued = lago_engine.issue_invoice(
        external_subscription_id="sub-lago",
        charges_from=OCT_1,
        charges_to=NOV_1,
        fees_amount_cents=4900,
    )
    lago_invoices_pull()
    drain_outbox()
    lago_engine.invoices[issued["lago_id"]]["status"] = "voided"

    lago_invoices_pull()

    invoice = Invoice.objects.get(lago_id=issued["lago_id"])
    assert (invoice.status, invoice.payment_status) == ("finalized", "succeeded")
    assert invoice.reconciliation == "mismatch" and "Voided in Lago" in invoice.reconciliation_note


def test_a_void_reaches_lago_before_it_is_applied_here(lago_engine, client, settings):
    """Lago first, then ours, in one transaction: if Lago cannot void, nothing changed here
    (the two sides never disagree), and a retry once it is back voids both."""
    issued = lago_engine.issue_invoice(
        external_subscription_id="sub-lago",
        charges_from=OCT_1,
        charges_to=NOV_1,
        fees_amount_cents=4900,
    )
    lago_invoices_pull()  # finalized and owed; its collection is queued, not yet run
    invoice = Invoice.objects.get(lago_id=issued["lago_id"])
    lago_url = settings.LAGO_API_URL

    settings.LAGO_API_URL = "http://127.0.0.1:9"  # Lago unreachable
    refused = client.post(f"/api/v1/invoices/{invoice.pk}/void/")

    assert refused.status_code == 503, refused.json()
    invoice.refresh_from_db()
    assert invoice.status == "finalized"
    assert lago_engine.invoices[issued["lago_id"]]["status"] == "finalized"

    settings.LAGO_API_URL = lago_url
    voided = client.post(f"/api/v1/invoices/{invoice.pk}/void/")

    assert voided.status_code == 200, voided.json()
    assert voided.json()["status"] == "voided"
    assert lago_engine.invoices[issued["lago_id"]]["status"] == "voided"


def test_a_void_whose_answer_is_lost_is_confirmed_by_asking_lago(lago_engine, client):
    """Lago voided the invoice but its answer never came (here: a 500 in front of it).
    Rolling back would leave a voided invoice collectable here, so Lago is asked."""
    issued = lago_engine.issue_invoice(
        external_subscription_id="sub-lago",
        charges_from=OCT_1,
        charges_to=NOV_1,
        fees_amount_cents=4900,
    )
    lago_invoices_pull()
    invoice = Invoice.objects.get(lago_id=issued["lago_id"])
    lago_engine.invoices[issued["lago_id"]]["status"] = "voided"  # done at Lago...
    lago_engine.fail_next(path_prefix=f"/api/v1/invoices/{issued['lago_id']}/void")  # ...unsaid

    voided = client.post(f"/api/v1/invoices/{invoice.pk}/void/")

    assert voided.status_code == 200, voided.json()
    invoice.refresh_from_db()
    assert invoice.status == "voided" and invoice.next_payment_attempt_at is None


def test_a_hung_lago_answers_the_preview_with_503_within_seconds(lago_engine, client, settings):
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts, never answers
    try:
        settings.LAGO_API_URL = f"http://127.0.0.1:{silent.getsockname()[1]}"
        settings.LAGO_TIMEOUT_SECONDS = 30.0  # the worker's timeout must not apply here
        settings.LAGO_REQUEST_TIMEOUT_SECONDS = 2.0
        started = time.monotonic()
        response = client.post(
            "/api/v1/invoices/generate/", {"subscription": "sub-lago"}, format="json"
        )
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert response.status_code == 503, response.content
    assert elapsed < 10, elapsed
