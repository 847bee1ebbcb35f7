"""Collecting invoices through Stripe (localstripe): paid with pm_card_visa, a declining
card retried on the dunning schedule until failed, and never a second charge: not when
collection runs twice, concurrently, or after a crash between Stripe and our commit."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.invoicing.models import Invoice
from billing.payments import collection
from billing.payments.models import PaymentAttempt
from tests.factories import PaymentAttemptFactory
from tests.helpers.concurrency import race
from tests.helpers.outbox import drain_outbox, run_outbox
from tests.helpers.payments import declining_card, finalized_invoice, payment_intents


@pytest.fixture
def stripe_customer(db):
    def get() -> str:
        from customers.models import Customer

        return Customer.objects.get(external_id="payer").stripe_customer_id

    return get


@pytest.mark.django_db
def test_a_finalized_invoice_is_paid_with_the_default_card(client, stripe_enabled, stripe_customer):
    invoice = finalized_invoice(card="pm_card_visa")

    drain_outbox()

    invoice.refresh_from_db()
    assert invoice.payment_status == "succeeded" and invoice.paid_at is not None
    attempt = invoice.attempts.get()
    assert (attempt.status, attempt.number, attempt.amount_cents) == ("succeeded", 1, 4900)
    assert attempt.idempotency_key == f"invoice:{invoice.pk}:pay:1"
    intents = payment_intents(stripe_enabled, stripe_customer())
    assert len(intents) == 1
    intent = intents[0]
    assert (intent["amount"], intent["currency"], intent["status"]) == (4900, "usd", "succeeded")
    assert intent["metadata"]["invoice_id"] == str(invoice.pk)
    body = client.get(f"/api/v1/invoices/{invoice.pk}/").json()
    assert body["payment_status"] == "succeeded" and body["amount_due_cents"] == 0
    assert body["payment_attempts"][0]["stripe_payment_intent_id"] == intent["id"]
    # Paid: neither payable nor voidable again.
    assert client.post(f"/api/v1/invoices/{invoice.pk}/pay/").status_code == 409
    assert client.post(f"/api/v1/invoices/{invoice.pk}/void/").status_code == 409


@pytest.mark.django_db
def test_collection_run_twice_charges_once(stripe_enabled, stripe_customer):
    invoice = finalized_invoice(card="pm_card_visa")

    first = collection.invoice_collect(invoice_id=str(invoice.pk))
    second = collection.invoice_collect(invoice_id=str(invoice.pk))
    drain_outbox()

    assert (first, second) == ("succeeded", "not due")
    assert len(payment_intents(stripe_enabled, stripe_customer())) == 1
    assert PaymentAttempt.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_collections_charge_once(stripe_enabled, stripe_customer):
    invoice = finalized_invoice(card="pm_card_visa")

    results = race([lambda: collection.invoice_collect(invoice_id=str(invoice.pk))] * 6)
    drain_outbox()

    assert results.count("succeeded") == 1, results
    assert len(payment_intents(stripe_enabled, stripe_customer())) == 1
    invoice.refresh_from_db()
    assert invoice.payment_status == "succeeded"


@pytest.mark.django_db
def test_a_crash_between_stripe_and_our_commit_does_not_charge_again(
    stripe_enabled, stripe_customer, monkeypatch
):
    invoice = finalized_invoice(card="pm_card_visa")
    settle = collection.payment_attempt_settle

    def crash(**kwargs):
        raise SystemExit("worker killed after Stripe answered")

    monkeypatch.setattr(collection, "payment_attempt_settle", crash)
    with pytest.raises(SystemExit):
        collection.invoice_collect(invoice_id=str(invoice.pk))
    attempt = PaymentAttempt.objects.get()
    assert attempt.status == "processing" and attempt.stripe_payment_intent_id is None
    assert len(payment_intents(stripe_enabled, stripe_customer())) == 1

    monkeypatch.setattr(collection, "payment_attempt_settle", settle)
    outcome = collection.invoice_collect(invoice_id=str(invoice.pk))

    assert outcome == "adopted"
    intents = payment_intents(stripe_enabled, stripe_customer())
    assert len(intents) == 1
    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert attempt.status == "succeeded" and attempt.stripe_payment_intent_id == intents[0]["id"]
    assert invoice.payment_status == "succeeded"


@pytest.mark.django_db
def test_a_declining_card_is_retried_on_schedule_then_the_invoice_fails(
    client, stripe_enabled, stripe_customer, settings
):
    settings.DUNNING_SCHEDULE_DAYS = [1, 3, 7]
    # Eleven days of dunning pass in seconds here: the daily limit would stop them.
    settings.COLLECTION_MAX_CHARGES_PER_CUSTOMER_PER_DAY = 10
    invoice = finalized_invoice(card=declining_card(stripe_enabled))
    drain_outbox()
    invoice.refresh_from_db()
    first = invoice.attempts.get()
    assert first.status == "failed" and first.failure_code
    assert invoice.payment_status == "pending"
    waits = [invoice.next_payment_attempt_at - first.completed_at]

    for _ in range(3):
        # Not due yet: the sweep queues nothing.
        assert collection.invoices_collect_due() == 0
        # Time passes: the retry falls due.
        Invoice.objects.filter(pk=invoice.pk).update(
            next_payment_attempt_at=timezone.now() - timedelta(seconds=1)
        )
        assert collection.invoices_collect_due() == 1
        drain_outbox()
        invoice.refresh_from_db()
        latest = invoice.attempts.order_by("-number").first()
        if invoice.next_payment_attempt_at:
            waits.append(invoice.next_payment_attempt_at - latest.completed_at)

    assert [round(w / timedelta(days=1)) for w in waits] == [1, 3, 7]
    assert invoice.payment_status == "failed"
    assert invoice.next_payment_attempt_at is None
    assert invoice.payment_blocked_reason == "dunning_exhausted"
    assert list(invoice.attempts.values_list("status", flat=True)) == ["failed"] * 4
    assert len(payment_intents(stripe_enabled, stripe_customer())) == 4
    listed = client.get("/api/v1/invoices/?payment_status=failed").json()["results"]
    assert [row["id"] for row in listed] == [str(invoice.pk)]

    # Staff retry after the customer changed card: paid with the new default.
    assert (
        client.post(
            "/api/v1/customers/payer/payment_methods/",
            {"stripe_payment_method_id": "pm_card_visa", "set_default": True},
            format="json",
        ).status_code
        == 201
    )
    retried = client.post(f"/api/v1/invoices/{invoice.pk}/pay/")
    assert retried.status_code == 200 and retried.json()["payment_status"] == "pending"
    drain_outbox()
    invoice.refresh_from_db()
    assert invoice.payment_status == "succeeded"
    assert invoice.attempts.count() == 5


@pytest.mark.django_db
def test_no_default_card_leaves_the_invoice_pending_until_one_is_set(
    client, stripe_enabled, stripe_customer
):
    invoice = finalized_invoice(card=None)
    drain_outbox()
    invoice.refresh_from_db()
    assert invoice.payment_status == "pending"
    assert invoice.payment_blocked_reason == "no_default_card"
    assert not invoice.attempts.exists()

    response = client.post(
        "/api/v1/customers/payer/payment_methods/",
        {"stripe_payment_method_id": "pm_card_visa", "set_default": True},
        format="json",
    )
    assert response.status_code == 201
    run_outbox()

    invoice.refresh_from_db()
    assert invoice.payment_status == "succeeded"
    assert len(payment_intents(stripe_enabled, stripe_customer())) == 1


@pytest.mark.django_db
def test_a_settled_attempt_is_not_reversed_by_a_later_failure(stripe_enabled):
    from billing.providers.stripe import payment_result

    invoice = finalized_invoice(card="pm_card_visa")
    attempt = PaymentAttemptFactory(invoice=invoice, number=1, processing=True)
    assert (attempt.amount_cents, attempt.currency) == (4900, "USD")
    Invoice.objects.filter(pk=invoice.pk).update(next_payment_attempt_at=None)
    intent = {
        "id": "pi_from_webhook",
        "status": "succeeded",
        "amount": 4900,
        "currency": "usd",
        "metadata": {"payment_attempt_id": str(attempt.pk)},
    }
    failed_later = {**intent, "status": "requires_payment_method"}

    collection.payment_attempt_settle(attempt_id=attempt.pk, result=payment_result(intent))
    collection.payment_attempt_settle(attempt_id=attempt.pk, result=payment_result(failed_later))

    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert attempt.status == "succeeded" and attempt.stripe_payment_intent_id == "pi_from_webhook"
    assert invoice.payment_status == "succeeded"
    assert collection.attempt_of(payment_result(intent)) == attempt


@pytest.mark.django_db
def test_an_attempt_stripe_was_still_processing_is_refreshed_not_recharged(
    stripe_enabled, stripe_customer
):
    invoice = finalized_invoice(card="pm_card_visa")
    drain_outbox()
    attempt = invoice.attempts.get()
    # As if Stripe had answered `processing` and no webhook had come since.
    PaymentAttempt.objects.filter(pk=attempt.pk).update(
        status="processing", stripe_status="processing", completed_at=None
    )
    Invoice.objects.filter(pk=invoice.pk).update(
        payment_status="pending", paid_at=None, paid_amount_cents=0
    )

    outcome = collection.invoice_collect(invoice_id=str(invoice.pk))

    assert outcome == "refreshed"
    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert attempt.status == "succeeded" and invoice.payment_status == "succeeded"
    assert len(payment_intents(stripe_enabled, stripe_customer())) == 1


@pytest.mark.django_db
def test_a_success_after_a_recorded_failure_pays_the_invoice_or_flags_a_refund(
    stripe_enabled,
):
    from billing.providers.base import PaymentResult

    invoice = finalized_invoice(card=None)
    Invoice.objects.filter(pk=invoice.pk).update(next_payment_attempt_at=None)

    def attempt(number: int) -> PaymentAttempt:
        return PaymentAttemptFactory(invoice=invoice, number=number, processing=True)

    def result(pi: str, status: str) -> PaymentResult:
        return PaymentResult(id=pi, status=status, amount=4900, currency="USD")

    first = attempt(1)
    collection.payment_attempt_settle(
        attempt_id=first.pk, result=result("pi_first", "requires_payment_method")
    )
    # Stripe later reports the first charge succeeded after all (a lost answer).
    collection.payment_attempt_settle(attempt_id=first.pk, result=result("pi_first", "succeeded"))
    invoice.refresh_from_db()
    first.refresh_from_db()
    assert first.status == "succeeded" and invoice.payment_status == "succeeded"

    # A second charge that succeeds on a paid invoice is flagged for a refund.
    second = attempt(2)
    collection.payment_attempt_settle(attempt_id=second.pk, result=result("pi_second", "succeeded"))
    second.refresh_from_db()
    assert second.failure_code == "refund_needed" and "pi_second" in second.failure_message


def test_unknown_outcomes_are_not_failures():
    from billing.providers.base import ProviderError, ProviderUnavailable

    assert collection._outcome_unknown(ProviderUnavailable("stripe", "timeout"))
    assert collection._outcome_unknown(
        ProviderError("stripe", "in use", code="idempotency_key_in_use", http_status=409)
    )
    assert not collection._outcome_unknown(
        ProviderError("stripe", "bad", code="parameter_unknown", http_status=400)
    )


@pytest.mark.django_db
def test_removing_the_last_card_with_open_invoices_is_allowed_but_flagged(client, stripe_enabled):
    invoice = finalized_invoice(card=declining_card(stripe_enabled))
    drain_outbox()  # the decline leaves the invoice open, retrying
    method = client.get("/api/v1/customers/payer/payment_methods/").json()["results"][0]

    response = client.delete(f"/api/v1/customers/payer/payment_methods/{method['id']}/")

    assert response.status_code == 204
    assert response["Billing-Warning"] == "last_payment_method_removed; open_invoices=1"
    invoice.refresh_from_db()
    assert invoice.payment_status == "pending"


@pytest.mark.django_db
def test_an_unknown_outcome_for_an_unlinked_customer_goes_to_staff_once(
    stripe_enabled, monkeypatch
):
    from customers.models import Customer

    invoice = finalized_invoice(card="pm_card_visa")
    monkeypatch.setattr(
        collection, "payment_attempt_settle", lambda **kw: (_ for _ in ()).throw(SystemExit)
    )
    with pytest.raises(SystemExit):
        collection.invoice_collect(invoice_id=str(invoice.pk))
    monkeypatch.undo()
    Customer.objects.filter(pk=invoice.customer_id).update(stripe_customer_id=None)

    assert collection.invoice_collect(invoice_id=str(invoice.pk)) == "needs review"
    PaymentAttempt.objects.update(updated_at=timezone.now() - timedelta(hours=1))

    invoice.refresh_from_db()
    assert invoice.payment_blocked_reason == "payment_outcome_unknown"
    assert invoice.attempts.get().needs_review  # our flag, not Stripe's status
    assert invoice.attempts.get().stripe_status != "needs_review"
    assert collection.invoices_collect_due() == 0  # not looked at again


@pytest.mark.django_db
def test_a_voided_invoice_is_owed_nothing_in_filters_and_on_its_pdf(client, stripe_enabled):
    from billing.invoicing.pdf import invoice_html

    invoice = finalized_invoice(card=None)
    drain_outbox()
    assert client.post(f"/api/v1/invoices/{invoice.pk}/void/").status_code == 200

    invoice.refresh_from_db()
    assert (invoice.status, invoice.payment_status) == ("voided", "voided")
    assert invoice.next_payment_attempt_at is None and invoice.payment_blocked_reason == ""
    pending = client.get("/api/v1/invoices/?payment_status=pending").json()["results"]
    assert pending == []
    voided = client.get("/api/v1/invoices/?payment_status=voided").json()["results"]
    assert [row["id"] for row in voided] == [str(invoice.pk)]
    html = invoice_html(invoice=invoice)
    assert "Voided" in html and "pending" not in html


@pytest.mark.django_db
def test_pay_without_a_default_card_is_refused_and_changes_nothing(client, stripe_enabled):
    from billing.sync.models import OutboxMessage

    invoice = finalized_invoice(card=None)
    drain_outbox()
    before = Invoice.objects.values().get(pk=invoice.pk)
    outbox_rows = OutboxMessage.objects.count()

    response = client.post(f"/api/v1/invoices/{invoice.pk}/pay/")

    assert response.status_code == 409
    error = response.json()["errors"][0]
    assert error["code"] == "no_default_payment_method"
    assert "no default payment method" in error["detail"]
    assert Invoice.objects.values().get(pk=invoice.pk) == before
    assert OutboxMessage.objects.count() == outbox_rows
    assert not invoice.attempts.exists()


@pytest.mark.django_db
def test_a_manual_retry_is_not_a_dunning_step(client, stripe_enabled, settings):
    settings.DUNNING_SCHEDULE_DAYS = [1, 3, 7]
    invoice = finalized_invoice(card=declining_card(stripe_enabled))
    drain_outbox()
    invoice.refresh_from_db()
    first = invoice.attempts.get()
    assert first.status == "failed" and first.automatic
    scheduled = invoice.next_payment_attempt_at
    assert round((scheduled - first.completed_at) / timedelta(days=1)) == 1

    assert client.post(f"/api/v1/invoices/{invoice.pk}/pay/").status_code == 200
    drain_outbox()

    invoice.refresh_from_db()
    manual = invoice.attempts.get(number=2)
    assert manual.status == "failed" and not manual.automatic
    assert invoice.payment_status == "pending"
    # The next automatic try stays where the automatic failure put it.
    assert invoice.next_payment_attempt_at == scheduled

    # The automatic retry is the schedule's second step (3 days), not its third.
    Invoice.objects.filter(pk=invoice.pk).update(
        next_payment_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    assert collection.invoices_collect_due() == 1
    drain_outbox()
    invoice.refresh_from_db()
    third = invoice.attempts.get(number=3)
    assert third.status == "failed" and third.automatic
    assert round((invoice.next_payment_attempt_at - third.completed_at) / timedelta(days=1)) == 3


@pytest.mark.django_db
def test_a_failed_attempt_keeps_the_payment_intent_stripe_named(stripe_enabled):
    from billing.providers.base import PaymentResult

    invoice = finalized_invoice(card=None)
    Invoice.objects.filter(pk=invoice.pk).update(next_payment_attempt_at=None)
    attempt = PaymentAttemptFactory(invoice=invoice, number=1, processing=True)

    # The call's refusal named no PaymentIntent (a 402 without one)...
    collection.payment_attempt_settle(
        attempt_id=attempt.pk,
        result=PaymentResult(
            id="", status="failed", amount=4900, currency="USD", failure_code="card_declined"
        ),
    )
    # ...then Stripe's payment_intent.payment_failed webhook names it.
    named = PaymentResult(
        id="pi_named_by_webhook",
        status="requires_payment_method",
        amount=4900,
        currency="USD",
        metadata={"payment_attempt_id": str(attempt.pk)},
    )
    collection.payment_attempt_settle(attempt_id=attempt.pk, result=named)

    attempt.refresh_from_db()
    assert attempt.status == "failed" and attempt.failure_code == "card_declined"
    assert attempt.stripe_payment_intent_id == "pi_named_by_webhook"
    assert collection.attempt_of(named) == attempt


@pytest.mark.django_db
def test_a_declined_charge_keeps_its_payment_intent(stripe_enabled, stripe_customer):
    invoice = finalized_invoice(card=declining_card(stripe_enabled))
    drain_outbox()

    attempt = invoice.attempts.get()
    intents = payment_intents(stripe_enabled, stripe_customer())
    assert attempt.status == "failed"
    assert [i["id"] for i in intents] == [attempt.stripe_payment_intent_id]
