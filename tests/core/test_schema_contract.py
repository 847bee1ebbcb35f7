"""What the OpenAPI document says, checked against what the API answers: two walks through
every operation, with a client that fails on any status an operation does not document
or any error code its description does not list (tests/helpers/openapi.py). Together the
walks see every operation of the document succeed."""

from datetime import UTC, datetime

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.invoicing.services import invoice_finalize
from core.models import ApiKey
from tests.factories import CustomerFactory, InvoiceFactory
from tests.helpers.invoicing import OCT_1, close_periods, subscribe
from tests.helpers.openapi import (
    DocumentedClient,
    api_schema,
    operation_for,
    operations,
    success_statuses,
)
from tests.helpers.outbox import run_outbox

pytestmark = pytest.mark.django_db

CARD_OPERATIONS = {
    "CreateCustomer",
    "GetCustomer",
    "UpdateCustomer",
    "ListCustomers",
    "CreateSetupIntent",
    "AddPaymentMethod",
    "ListPaymentMethods",
    "SetDefaultPaymentMethod",
    "RemovePaymentMethod",
}
GENERATE = "/api/v1/invoices/generate/"
BILLING_OPERATIONS = {
    "ApiIndex",
    "CreateBillableMetric",
    "ListBillableMetrics",
    "GetBillableMetric",
    "UpdateBillableMetric",
    "CreatePlan",
    "ListPlans",
    "GetPlan",
    "UpdatePlan",
    "CreateSubscription",
    "ListSubscriptions",
    "GetSubscription",
    "UpdateSubscription",
    "CancelSubscription",
    "ReactivateSubscription",
    "RecordUsage",
    "RecordUsageBatch",
    "ListUsage",
    "GetSubscriptionUsage",
    "GenerateInvoice",
    "PreviewInvoice",
    "ListInvoices",
    "GetInvoice",
    "FinalizeInvoice",
    "DownloadInvoicePdf",
    "PayInvoice",
    "VoidInvoice",
}


CORRECTION_OPERATIONS = {
    "CreateCoupon",
    "ListCoupons",
    "GetCoupon",
    "TerminateCoupon",
    "ApplyCoupon",
    "ListAppliedCoupons",
    "GetAppliedCoupon",
    "TerminateAppliedCoupon",
    "CreateCreditNote",
    "EstimateCreditNote",
    "ListCreditNotes",
    "GetCreditNote",
    "VoidCreditNote",
    "CreateAddOn",
    "ListAddOns",
    "GetAddOn",
    "UpdateAddOn",
    "DeleteAddOn",
    "CreateOneOffInvoice",
    "CreateWallet",
    "ListWallets",
    "GetWallet",
    "GrantCredits",
    "TopUpWallet",
    "TerminateWallet",
    "ListWalletTransactions",
    "GetCustomerWallet",
}


def test_the_walks_cover_every_operation_of_the_document():
    documented = {operation["operationId"] for _, _, operation in operations(api_schema())}
    assert documented == CARD_OPERATIONS | BILLING_OPERATIONS | CORRECTION_OPERATIONS


def test_coupons_and_credit_notes_answer_as_documented(client, catalog):
    api = DocumentedClient(client)
    ten = {"code": "ten", "name": "Ten", "coupon_type": "percentage", "percentage_rate": "10"}
    ten["frequency"] = "forever"
    assert api.post("/api/v1/coupons/", ten, format="json").status_code == 201
    assert api.post("/api/v1/coupons/", ten, format="json").status_code == 409
    assert api.get("/api/v1/coupons/").status_code == 200
    assert api.get("/api/v1/coupons/ten/").status_code == 200
    applying = {"customer": "acme", "coupon_code": "ten"}
    applied = api.post("/api/v1/applied_coupons/", applying, format="json")
    assert applied.status_code == 201
    assert api.get("/api/v1/applied_coupons/?customer=acme").status_code == 200
    applied_url = f"/api/v1/applied_coupons/{applied.json()['id']}/"
    assert api.get(applied_url).status_code == 200
    assert api.post(f"{applied_url}terminate/").status_code == 200
    assert api.post(f"{applied_url}terminate/").status_code == 409
    assert api.post("/api/v1/coupons/ten/terminate/").status_code == 200
    assert api.post("/api/v1/applied_coupons/", applying, format="json").status_code == 422

    draft = InvoiceFactory(subscription__customer=catalog.acme, subscription__plan=catalog.pro)
    invoice = str(invoice_finalize(invoice=draft).pk)
    whole = {"invoice": invoice}
    assert api.post("/api/v1/credit_notes/estimate/", whole, format="json").status_code == 200
    note = {**whole, "reason": "other", "credit_amount_cents": 4900}
    created = api.post("/api/v1/credit_notes/", note, format="json")
    assert created.status_code == 201
    assert api.post("/api/v1/credit_notes/", note, format="json").status_code == 422
    assert api.get(f"/api/v1/credit_notes/?invoice={invoice}").status_code == 200
    note_url = f"/api/v1/credit_notes/{created.json()['id']}/"
    assert api.get(note_url).status_code == 200
    assert api.post(f"{note_url}void/").status_code == 200
    assert api.post(f"{note_url}void/").status_code == 409

    fee = {"code": "setup", "name": "Setup", "amount_cents": 15000, "amount_currency": "USD"}
    assert api.post("/api/v1/add_ons/", fee, format="json").status_code == 201
    assert api.post("/api/v1/add_ons/", fee, format="json").status_code == 409
    assert api.get("/api/v1/add_ons/").status_code == 200
    assert api.get("/api/v1/add_ons/setup/").status_code == 200
    assert api.patch("/api/v1/add_ons/setup/", {"name": "Set-up"}, format="json").status_code == 200
    order = {"customer": "acme", "currency": "USD", "fees": [{"add_on_code": "setup"}]}
    assert api.post("/api/v1/invoices/", order, format="json").status_code == 201
    wrong = {**order, "currency": "EUR"}
    assert api.post("/api/v1/invoices/", wrong, format="json").status_code == 422
    assert api.delete("/api/v1/add_ons/setup/").status_code == 204

    opened = api.post("/api/v1/wallets/", {"customer": "acme", "currency": "USD"}, format="json")
    assert opened.status_code == 201
    assert (
        api.post(
            "/api/v1/wallets/", {"customer": "acme", "currency": "EUR"}, format="json"
        ).status_code
        == 422
    )
    wallet = f"/api/v1/wallets/{opened.json()['id']}/"
    assert api.get("/api/v1/wallets/?customer=acme").status_code == 200
    assert api.get(wallet).status_code == 200
    assert api.post(f"{wallet}grant/", {"credits": "10"}, format="json").status_code == 200
    assert api.post(f"{wallet}top_up/", {"credits": "10"}, format="json").status_code == 201
    assert api.get(f"{wallet}transactions/").status_code == 200
    assert api.get("/api/v1/customers/acme/wallet/").status_code == 200
    assert api.post(f"{wallet}terminate/").status_code == 200
    assert api.post(f"{wallet}terminate/").status_code == 409

    assert api.succeeded == CORRECTION_OPERATIONS


def test_create_setup_intent_answers_the_status_it_documents(client, stripe_enabled):
    CustomerFactory(external_id="seti")
    run_outbox()  # the worker creates the Stripe customer

    response = client.post("/api/v1/customers/seti/setup_intents/")

    documented = success_statuses(operation_for("POST", "/api/v1/customers/seti/setup_intents/"))
    assert documented == {response.status_code} == {201}
    assert response.json()["client_secret"].startswith("seti_")


def test_customers_and_cards_answer_as_documented(client, stripe_enabled):
    api = DocumentedClient(client)
    base = "/api/v1/customers/"
    created = api.post(base, {"external_id": "doc", "currency": "USD"}, format="json")
    assert created.status_code == 201
    assert api.post(base, {"external_id": "doc"}, format="json").status_code == 409
    assert api.post(base, {"external_id": "a b"}, format="json").status_code == 400
    card = {"stripe_payment_method_id": "pm_card_visa"}
    pending = api.post(f"{base}doc/payment_methods/", card, format="json")
    assert pending.json()["errors"][0]["code"] == "stripe_customer_pending"
    run_outbox()

    assert api.post(f"{base}doc/setup_intents/").status_code == 201
    first = api.post(
        f"{base}doc/payment_methods/",
        {"stripe_payment_method_id": "pm_card_visa", "set_default": True},
        format="json",
    ).json()
    second = api.post(
        f"{base}doc/payment_methods/", {"stripe_payment_method_id": "pm_card_visa"}, format="json"
    ).json()
    declined = api.post(
        f"{base}doc/payment_methods/",
        {"stripe_payment_method_id": "pm_card_visa_chargeDeclined"},
        format="json",
    )
    assert declined.status_code == 402
    missing = api.post(
        f"{base}doc/payment_methods/", {"stripe_payment_method_id": "pm_nosuch"}, format="json"
    )
    assert missing.status_code == 422
    assert api.get(f"{base}doc/payment_methods/").status_code == 200
    assert api.post(f"{base}doc/payment_methods/{second['id']}/set_default/").status_code == 200
    assert api.delete(f"{base}doc/payment_methods/{first['id']}/").status_code == 204
    removed = api.post(f"{base}doc/payment_methods/{first['id']}/set_default/")
    assert removed.json()["errors"][0]["code"] == "payment_method_detached"
    unknown = "00000000-0000-0000-0000-000000000000"
    assert api.delete(f"{base}doc/payment_methods/{unknown}/").status_code == 404

    assert api.get(f"{base}doc/").status_code == 200
    assert api.get(f"{base}nobody/").status_code == 404
    assert api.patch(f"{base}doc/", {"name": "Doc"}, format="json").status_code == 200
    assert api.get(f"{base}?search=doc").status_code == 200
    assert api.get(f"{base}?cursor=nonsense").status_code == 404
    assert api.get(f"{base}?created_after=yesterday").status_code == 400

    assert api.succeeded == CARD_OPERATIONS


def test_plans_subscriptions_usage_and_invoices_answer_as_documented(client, catalog, settings):
    api = DocumentedClient(client)
    assert api.get("/api/v1/").status_code == 200

    metric = {"code": "seats", "name": "Seats", "aggregation": "max", "field_name": "seats"}
    assert api.post("/api/v1/billable_metrics/", metric, format="json").status_code == 201
    assert api.post("/api/v1/billable_metrics/", metric, format="json").status_code == 409
    assert api.get("/api/v1/billable_metrics/").status_code == 200
    assert api.get("/api/v1/billable_metrics/seats/").status_code == 200
    changed = api.patch("/api/v1/billable_metrics/seats/", {"name": "Seats used"}, format="json")
    assert changed.status_code == 200
    plan = {"code": "team", "name": "Team", "interval": "monthly", "amount_cents": 1000}
    assert api.post("/api/v1/plans/", {**plan, "currency": "USD"}, format="json").status_code == 201
    assert api.get("/api/v1/plans/").status_code == 200
    assert api.get("/api/v1/plans/team/").status_code == 200
    assert api.patch("/api/v1/plans/team/", {"name": "Teams"}, format="json").status_code == 200
    subscribe(api, "sub-doc", "pro", OCT_1)
    assert api.patch("/api/v1/plans/pro/", {"amount_cents": 1}, format="json").status_code == 409
    euro = api.patch("/api/v1/customers/acme/", {"currency": "EUR"}, format="json")
    assert euro.json()["errors"][0] == {
        "code": "currency_locked",
        "detail": euro.json()["errors"][0]["detail"],
        "attr": "currency",
    }
    back_dated = {"external_id": "old", "customer": "acme", "plan": "pro"}
    back_dated["start_at"] = "2020-01-01T00:00:00Z"
    assert api.post("/api/v1/subscriptions/", back_dated, format="json").status_code == 422

    event = {"transaction_id": "t-1", "subscription": "sub-doc", "metric": "api_calls"}
    event["timestamp"] = datetime(2026, 10, 2, tzinfo=UTC).isoformat()
    assert api.post("/api/v1/usage/", event, format="json").status_code == 201
    assert api.post("/api/v1/usage/", event, format="json").status_code == 200
    other = {**event, "properties": {"x": 1}}
    assert api.post("/api/v1/usage/", other, format="json").status_code == 409
    unknown = {**event, "transaction_id": "t-2", "metric": "nope"}
    assert api.post("/api/v1/usage/", unknown, format="json").status_code == 422
    batch = {"events": [{**event, "transaction_id": "t-3"}, {"transaction_id": "t-4"}]}
    assert api.post("/api/v1/usage/batch/", batch, format="json").status_code == 200
    assert api.get("/api/v1/usage/?subscription=sub-doc").status_code == 200
    assert api.get("/api/v1/usage/").status_code == 400  # the subscription is required
    assert api.get("/api/v1/subscriptions/sub-doc/usage/").status_code == 200

    assert api.get("/api/v1/subscriptions/?customer=acme").status_code == 200
    assert api.get("/api/v1/subscriptions/sub-doc/").status_code == 200
    period = {"subscription": "sub-doc"}
    future = {
        **period,
        "period_start": "2099-01-01T00:00:00Z",
        "period_end": "2099-02-01T00:00:00Z",
    }
    assert api.post(GENERATE, future, format="json").status_code == 422  # not a closed period
    assert api.get("/api/v1/invoices/preview/", period).status_code == 200
    assert api.get("/api/v1/invoices/preview/", {"subscription": "nobody"}).status_code == 404
    assert api.get("/api/v1/invoices/preview/").status_code == 400
    close_periods()
    generated = api.post(GENERATE, period, format="json")
    assert generated.status_code == 201
    assert api.post(GENERATE, period, format="json").status_code == 200
    nobody = api.post(GENERATE, {"subscription": "nobody"}, format="json")
    assert nobody.json()["errors"][0]["detail"] == "No subscription with external_id 'nobody'."
    invoice = f"/api/v1/invoices/{generated.json()['id']}/"
    assert api.get("/api/v1/invoices/?customer=acme").status_code == 200
    assert api.get(invoice).status_code == 200
    assert api.post(f"{invoice}pay/").status_code == 409  # a draft
    assert api.post(f"{invoice}finalize/").status_code == 200
    assert api.post(f"{invoice}finalize/").status_code == 409
    assert api.get(f"{invoice}pdf/", HTTP_ACCEPT="application/pdf").status_code == 200
    assert api.post(f"{invoice}pay/").status_code == 200
    assert api.post(f"{invoice}void/").status_code == 200
    assert api.post(f"{invoice}void/").status_code == 409

    changed = api.patch("/api/v1/subscriptions/sub-doc/", {"plan": "business"}, format="json")
    assert changed.status_code == 200
    assert api.post("/api/v1/subscriptions/sub-doc/reactivate/").status_code == 409
    assert api.post("/api/v1/subscriptions/sub-doc/cancel/").status_code == 200
    assert api.post("/api/v1/subscriptions/sub-doc/cancel/").status_code == 409
    assert api.post("/api/v1/subscriptions/sub-doc/reactivate/").status_code == 200

    settings.API_THROTTLE_RATE = "1/minute"
    assert api.get("/api/v1/plans/").status_code == 429

    assert api.succeeded == BILLING_OPERATIONS


def test_refusals_of_the_key_answer_as_documented(db, anonymous_client, read_only_client):
    key, revoked_key = ApiKey.generate(name="revoked")
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    revoked = APIClient()
    revoked.credentials(HTTP_AUTHORIZATION=f"Bearer {revoked_key}")

    for caller, status in ((anonymous_client, 401), (revoked, 401), (read_only_client, 403)):
        api = DocumentedClient(caller)
        response = api.post("/api/v1/customers/", {"external_id": "x"}, format="json")
        assert response.status_code == status
    assert DocumentedClient(read_only_client).get("/api/v1/customers/").status_code == 200
