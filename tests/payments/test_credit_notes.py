"""Credit notes on issued invoices, refunded to a localstripe card, credited to the
customer's balance or offset against what is owed, in hand-computed cents.

The invoice of these tests: Pro (49.00) for October plus 20.00 of API calls, at 20 % tax:
fees 6900, tax 1380, total 8280, paid by card."""

import contextlib
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.invoicing.credit_notes import ItemRequest, credit_note_create
from billing.invoicing.models import CreditApplication, CreditNote, Invoice, InvoiceLine
from billing.invoicing.services import invoice_finalize
from billing.payments import refunds
from billing.payments.models import Refund
from core.exceptions import Conflict, UnprocessableEntity
from customers.services import payment_method_add
from tests.factories import (
    CustomerFactory,
    InvoiceFactory,
    PaymentAttemptFactory,
    PlanFactory,
    SubscriptionFactory,
)
from tests.helpers.concurrency import race
from tests.helpers.invoicing import NOV_1, OCT_1
from tests.helpers.outbox import drain_outbox
from tests.helpers.payments import stripe_refunds

pytestmark = pytest.mark.django_db
LINES = [
    {"description": "Pro", "amount_cents": 4900, "fee_type": "subscription"},
    {
        "description": "API calls",
        "amount_cents": 2000,
        "fee_type": "charge",
        "units": Decimal(20000),
        "unit_amount": Decimal("0.001"),
    },
]


def _draft(card: str | None = "pm_card_visa", **extra) -> Invoice:
    payer = CustomerFactory(external_id="payer", currency="USD", tax_rate=Decimal(20))
    drain_outbox()
    payer.refresh_from_db()
    if card:
        payment_method_add(customer=payer, stripe_payment_method_id=card, set_default=True)
    pro = PlanFactory(code="pro", name="Pro", amount_cents=4900, currency="USD")
    subscription = SubscriptionFactory(
        external_id="sub-pay", customer=payer, plan=pro, start_at=OCT_1
    )
    return InvoiceFactory(subscription=subscription, lines=LINES, **extra)


def paid_invoice() -> Invoice:
    invoice = invoice_finalize(invoice=_draft())
    drain_outbox()
    invoice.refresh_from_db()
    assert (invoice.total_amount_cents, invoice.payment_status) == (8280, "succeeded")
    assert invoice.paid_amount_cents == 8280
    return invoice


def line(invoice: Invoice, position: int) -> InvoiceLine:
    return invoice.lines.get(position=position)


def test_a_partial_credit_note_is_refunded_to_the_card_once(client, stripe_enabled):
    """10.00 of the API calls, tax 20 % = 2.00: a credit note of 12.00, refunded. The
    refund runs three times and races itself: Stripe holds one refund of 1200."""
    invoice = paid_invoice()

    response = client.post(
        "/api/v1/credit_notes/",
        {
            "invoice": str(invoice.pk),
            "reason": "product_unsatisfactory",
            "items": [{"line_position": 2, "amount_cents": 1000}],
            "refund_amount_cents": 1200,
        },
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="cn-1",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["number"].endswith("-CN-000001")
    assert (body["subtotal_amount_cents"], body["taxes_amount_cents"]) == (1000, 200)
    assert (body["total_amount_cents"], body["refund_amount_cents"]) == (1200, 1200)
    assert body["refund_status"] == "pending"
    refund = Refund.objects.get()
    for _ in range(3):
        refunds.refund_execute(refund_id=str(refund.pk))
    drain_outbox()

    made = stripe_refunds(stripe_enabled, invoice)
    assert [r["amount"] for r in made] == [1200]
    assert made[0]["metadata"]["refund_id"] == str(refund.pk)
    invoice.refresh_from_db()
    assert (invoice.credited_amount_cents, invoice.refunded_amount_cents) == (1200, 1200)
    assert invoice.payment_status == "partially_refunded"
    assert line(invoice, 2).credited_amount_cents == 1000
    assert CreditNote.objects.get().refund_status == "succeeded"
    again = client.get(f"/api/v1/invoices/{invoice.pk}/").json()
    assert (again["paid_amount_cents"], again["refunded_amount_cents"]) == (8280, 1200)


def test_the_whole_invoice_credited_takes_every_cent_and_nothing_more(client, stripe_enabled):
    invoice = paid_invoice()
    first = credit_note_create(
        invoice=invoice,
        reason="order_change",
        items=[ItemRequest(line_id=line(invoice, 1).pk, amount_cents=333)],
        credit_amount_cents=400,  # 333 + 66.6 tax, rounded half-up once: 67
    )
    assert (first.taxes_amount_cents, first.total_amount_cents) == (67, 400)

    rest = credit_note_create(
        invoice=invoice, reason="order_cancellation", credit_amount_cents=7880
    )

    assert (rest.subtotal_amount_cents, rest.taxes_amount_cents) == (6567, 1313)
    invoice.refresh_from_db()
    assert invoice.credited_amount_cents == invoice.total_amount_cents == 8280
    response = client.post(
        "/api/v1/credit_notes/",
        {"invoice": str(invoice.pk), "reason": "other", "credit_amount_cents": 1},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="cn-2",
    )
    assert (
        response.status_code == 422 and response.json()["errors"][0]["code"] == "nothing_to_credit"
    )


def test_more_than_is_creditable_is_refused_by_the_service_and_the_database(client, stripe_enabled):
    invoice = paid_invoice()
    response = client.post(
        "/api/v1/credit_notes/",
        {
            "invoice": str(invoice.pk),
            "reason": "duplicated_charge",
            "items": [{"line_position": 2, "amount_cents": 2001}],
        },
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="cn-3",
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "exceeds_creditable"
    assert CreditNote.objects.count() == 0

    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.filter(pk=line(invoice, 2).pk).update(credited_amount_cents=2001)
    # Nor may anything else of an issued invoice's line change.
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.filter(pk=line(invoice, 2).pk).update(amount_cents=1)


@pytest.mark.django_db(transaction=True)
def test_racing_credit_notes_never_exceed_the_line(stripe_enabled):
    invoice = paid_invoice()
    target = line(invoice, 1).pk

    def credit() -> str:
        try:
            credit_note_create(
                invoice=invoice,
                reason="other",
                items=[ItemRequest(line_id=target, amount_cents=3000)],
                credit_amount_cents=3600,
            )
        except UnprocessableEntity as exc:
            return exc.code
        return "issued"

    assert sorted(race([credit, credit])) == ["exceeds_creditable", "issued"]
    assert InvoiceLine.objects.get(pk=target).credited_amount_cents == 3000


@pytest.mark.django_db(transaction=True)
def test_racing_refund_runs_refund_once(stripe_enabled):
    invoice = paid_invoice()
    credit_note_create(
        invoice=invoice,
        reason="fraudulent_charge",
        items=[ItemRequest(line_id=line(invoice, 1).pk, amount_cents=4900)],
        refund_amount_cents=5880,
    )
    refund = Refund.objects.get()

    race([lambda: refunds.refund_execute(refund_id=str(refund.pk))] * 3)
    drain_outbox()

    assert [r["amount"] for r in stripe_refunds(stripe_enabled, invoice)] == [5880]
    invoice.refresh_from_db()
    assert (invoice.refunded_amount_cents, invoice.payment_status) == (5880, "partially_refunded")


def test_a_credit_goes_to_the_balance_and_off_the_next_invoice(stripe_enabled):
    """A credit of 12.00 on October's invoice; November's 82.80 is charged 70.80."""
    invoice = paid_invoice()
    credit_note_create(
        invoice=invoice,
        reason="product_unsatisfactory",
        items=[ItemRequest(line_id=line(invoice, 2).pk, units=Decimal(10000))],
        credit_amount_cents=1200,
    )
    november = InvoiceFactory(
        subscription=invoice.subscription, period_start=NOV_1, period_end=NOV_1, lines=LINES
    )

    november = invoice_finalize(invoice=november)
    drain_outbox()

    november.refresh_from_db()
    assert november.credit_balance_amount_cents == 1200
    assert november.payable_amount_cents == 7080
    assert november.attempts.get().amount_cents == 7080
    assert november.paid_amount_cents == 7080
    assert CreditNote.objects.get().balance_amount_cents == 0


def test_a_voided_invoice_gives_its_credit_balance_back(client, stripe_enabled):
    """November took the 12.00 credit; November is voided before it is paid: the credit
    note's balance is 12.00 again, ready for the next invoice."""
    invoice = paid_invoice()
    note = credit_note_create(
        invoice=invoice,
        reason="product_unsatisfactory",
        items=[ItemRequest(line_id=line(invoice, 2).pk, units=Decimal(10000))],
        credit_amount_cents=1200,
    )
    november = InvoiceFactory(
        subscription=invoice.subscription, period_start=NOV_1, period_end=NOV_1, lines=LINES
    )
    november = invoice_finalize(invoice=november)  # not collected yet: the outbox waits
    assert november.credit_balance_amount_cents == 1200

    assert client.post(f"/api/v1/invoices/{november.pk}/void/").status_code == 200

    note.refresh_from_db()
    assert note.balance_amount_cents == 1200
    applied = CreditApplication.objects.filter(invoice=november).order_by("id")
    assert [a.amount_cents for a in applied] == [1200, -1200]


def test_an_offset_takes_what_an_unpaid_invoice_owes(client, stripe_enabled):
    invoice = invoice_finalize(invoice=_draft(card=None))
    assert invoice.amount_due_cents == 8280

    note = credit_note_create(
        invoice=invoice,
        reason="order_change",
        items=[ItemRequest(line_id=line(invoice, 2).pk, amount_cents=2000)],
    )

    assert (note.offset_amount_cents, note.refund_amount_cents) == (2400, 0)
    body = client.get(f"/api/v1/invoices/{invoice.pk}/").json()
    assert (body["offset_amount_cents"], body["amount_due_cents"]) == (2400, 5880)
    refused = client.post(
        "/api/v1/credit_notes/",
        {"invoice": str(invoice.pk), "reason": "other", "refund_amount_cents": 6888},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="cn-4",
    )
    assert (
        refused.status_code == 422 and refused.json()["errors"][0]["code"] == "refund_exceeds_paid"
    )


def test_no_offset_while_a_payment_is_in_flight(stripe_enabled):
    invoice = invoice_finalize(invoice=_draft(card=None))
    PaymentAttemptFactory(invoice=invoice, processing=True)

    with pytest.raises(Conflict) as refused:
        credit_note_create(
            invoice=invoice,
            reason="order_change",
            items=[ItemRequest(line_id=line(invoice, 2).pk, amount_cents=2000)],
        )

    assert refused.value.code == "payment_in_progress"
    assert CreditNote.objects.count() == 0


def test_a_credited_invoice_cannot_be_voided_until_its_notes_are(client, stripe_enabled):
    invoice = invoice_finalize(invoice=_draft(card=None))
    note = credit_note_create(invoice=invoice, reason="other", credit_amount_cents=8280)

    refused = client.post(f"/api/v1/invoices/{invoice.pk}/void/")

    assert refused.status_code == 409
    assert refused.json()["errors"][0]["code"] == "invoice_credited"
    client.post(f"/api/v1/credit_notes/{note.pk}/void/")
    assert client.post(f"/api/v1/invoices/{invoice.pk}/void/").status_code == 200


def test_a_voided_credit_note_gives_back_what_it_credited(client, stripe_enabled):
    invoice = paid_invoice()
    note = credit_note_create(invoice=invoice, reason="other", credit_amount_cents=8280)

    response = client.post(f"/api/v1/credit_notes/{note.pk}/void/", HTTP_IDEMPOTENCY_KEY="v-1")

    assert response.status_code == 200 and response.json()["status"] == "voided"
    invoice.refresh_from_db()
    assert invoice.credited_amount_cents == 0
    assert line(invoice, 1).credited_amount_cents == 0
    again = client.post(f"/api/v1/credit_notes/{note.pk}/void/", HTTP_IDEMPOTENCY_KEY="v-2")
    assert again.status_code == 409
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditNote.objects.filter(pk=note.pk).update(total_amount_cents=1)


def test_the_credit_notes_are_listed_by_invoice(client, stripe_enabled):
    invoice = paid_invoice()
    credit_note_create(
        invoice=invoice,
        reason="other",
        credit_amount_cents=1200,
        items=[ItemRequest(line_id=line(invoice, 2).pk, amount_cents=1000)],
    )

    listed = client.get(f"/api/v1/credit_notes/?invoice={invoice.pk}").json()

    assert [note["total_amount_cents"] for note in listed["results"]] == [1200]
    assert listed["results"][0]["items"] == [
        {"line_position": 2, "description": "API calls", "amount_cents": 1000}
    ]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    requests_made=st.lists(
        st.tuples(st.integers(1, 2), st.integers(1, 5000), st.integers(0, 100)),
        min_size=1,
        max_size=6,
    )
)
def test_credited_and_refunded_never_exceed_what_was_paid(requests_made, stripe_enabled):
    """Any run of credit notes, each sending part of its total back to the card (share
    in percent) and the rest to the balance: whatever is refused, the invoice is never
    credited beyond its total nor refunded beyond what was paid."""
    with transaction.atomic():
        invoice = Invoice.objects.filter(customer__external_id="payer").first()
        if invoice is None:
            invoice = paid_invoice()
        sid = transaction.savepoint()
        for position, amount, share in requests_made:
            try:
                target = line(invoice, position)
                total_estimate = amount + (amount * 20 + 50) // 100
                refund = min(total_estimate * share // 100, total_estimate)
                credit_note_create(
                    invoice=invoice,
                    reason="other",
                    items=[ItemRequest(line_id=target.pk, amount_cents=amount)],
                    refund_amount_cents=refund,
                    credit_amount_cents=total_estimate - refund,
                )
            except UnprocessableEntity:
                pass
            invoice.refresh_from_db()
            pending = sum(
                n.refund_amount_cents for n in invoice.credit_notes.filter(refund_status="pending")
            )
            assert invoice.credited_amount_cents <= invoice.total_amount_cents
            assert invoice.refunded_amount_cents + pending <= invoice.paid_amount_cents
            for each in invoice.lines.all():
                assert each.credited_amount_cents <= each.amount_cents
        transaction.savepoint_rollback(sid)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    offsets=st.lists(
        st.tuples(st.integers(1, 2), st.integers(1, 5000), st.booleans()), min_size=1, max_size=6
    )
)
def test_the_amount_due_is_never_negative(offsets, stripe_enabled):
    """On an unpaid invoice, any run of credit notes offsetting what is owed or crediting
    the balance: the amount due never goes below zero and the database agrees."""
    with transaction.atomic():
        invoice = Invoice.objects.filter(customer__external_id="payer").first()
        if invoice is None:
            invoice = invoice_finalize(invoice=_draft(card=None))
        sid = transaction.savepoint()
        for position, amount, offset in offsets:
            due = Invoice.objects.get(pk=invoice.pk).amount_due_cents
            total_estimate = amount + (amount * 20 + 50) // 100
            with contextlib.suppress(UnprocessableEntity):
                credit_note_create(
                    invoice=invoice,
                    reason="order_change",
                    items=[ItemRequest(line_id=line(invoice, position).pk, amount_cents=amount)],
                    offset_amount_cents=min(total_estimate, due) if offset else 0,
                    credit_amount_cents=total_estimate
                    - (min(total_estimate, due) if offset else 0),
                )
            invoice.refresh_from_db()
            assert invoice.amount_due_cents >= 0
            assert invoice.offset_amount_cents <= invoice.payable_amount_cents
        transaction.savepoint_rollback(sid)
