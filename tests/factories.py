"""factory_boy factories: rows as the services would leave them, in one call.

Factories or the API?
- A test builds *what it checks* the way production builds it: the customers API tests
  create customers through the API, the lifecycle tests move subscriptions through it,
  the usage tests send usage, the invoice tests generate and finalize invoices
  (`tests.helpers.invoicing`).
- Everything else a test needs but does not check comes from a factory: the catalog
  (`tests.helpers.catalog`), a customer for a webhook to find, a subscription for usage
  to land on, a finalized invoice for the admin or for collection. It is quicker, and a
  failure then points at what the test is about, not at its set-up.
- Transitions with rules of their own (finalizing, collecting, cancelling, adding a card
  in Stripe) go through their services: factories build states, not transitions.

Every row satisfies the database's constraints and triggers:
- an invoice's total is its subtotal plus taxes, the subtotal is the sum of its lines,
  and the taxes are rounded half-up once, as the rating engine does;
- an issued (finalized or voided) invoice has a number and, since the triggers refuse
  lines on an issued invoice, is inserted with everything but its status, given its
  lines, then issued in one UPDATE; without lines it is a single INSERT;
- an active subscription has the billing period that contains its start and an open
  phase on its plan; a customer and its plan share a currency.

Saving a customer, metric, plan, charge or subscription fires the post_save signals that
record outbox rows, as in production; they are recorded only for the providers a test
enabled (`stripe_enabled`, `lago`), so enable those before building.
"""

import hashlib
import json
import uuid
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import factory
from django.conf import settings
from django.utils import timezone
from factory.django import DjangoModelFactory

from billing.invoicing.models import Invoice, InvoiceLine
from billing.payments.models import PaymentAttempt
from billing.sync.models import OutboxMessage
from core.iso import currency_exponent
from customers.models import Customer, PaymentMethod
from subscriptions.charges import validate_charge_filters, validate_properties
from subscriptions.models import (
    BillableMetric,
    Charge,
    Plan,
    Subscription,
    SubscriptionPhase,
)
from subscriptions.periods import period_containing
from tests.helpers.invoicing import NOV_1, OCT_1
from tests.helpers.signing import stripe_event
from webhooks.models import WebhookEvent
from webhooks.services import PROVIDERS as WEBHOOK_PROVIDERS


# --- Customers -------------------------------------------------------------------------
class CustomerFactory(DjangoModelFactory):
    """A customer paying in USD; no Stripe or Lago id (the outbox gives those)."""

    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"customer-{n}")
    currency = "USD"


class PaymentMethodFactory(DjangoModelFactory):
    """A card as we keep it. Only the row: Stripe does not hold it, so collecting with it
    needs `customers.services.payment_method_add` instead."""

    class Meta:
        model = PaymentMethod

    class Params:
        default = factory.Trait(is_default=True)
        detached = factory.Trait(
            status=PaymentMethod.Status.DETACHED, detached_at=factory.LazyFunction(timezone.now)
        )

    customer = factory.SubFactory(CustomerFactory)
    stripe_payment_method_id = factory.Sequence(lambda n: f"pm_test_{n:012d}")
    type = "card"
    brand = "visa"
    last4 = "4242"
    exp_month = 12
    exp_year = 2030


# --- Catalog and subscriptions ---------------------------------------------------------
class BillableMetricFactory(DjangoModelFactory):
    """A count metric, unless given another aggregation (which then gets a field)."""

    class Meta:
        model = BillableMetric

    code = factory.Sequence(lambda n: f"metric_{n}")
    name = factory.LazyAttribute(lambda o: o.code.replace("_", " ").capitalize())
    aggregation = BillableMetric.Aggregation.COUNT
    field_name = factory.LazyAttribute(
        lambda o: "" if o.aggregation == BillableMetric.Aggregation.COUNT else "value"
    )


class PlanFactory(DjangoModelFactory):
    """49.00 USD a month in arrears, no charges (add them with ChargeFactory)."""

    class Meta:
        model = Plan

    code = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.LazyAttribute(lambda o: o.code.title())
    interval = Plan.Interval.MONTHLY
    amount_cents = 4900
    currency = "USD"


class ChargeFactory(DjangoModelFactory):
    """A standard charge of 0.002 a unit; its properties are checked as the API checks
    them, so a factory cannot store a price list the service would refuse."""

    class Meta:
        model = Charge

    plan = factory.SubFactory(PlanFactory)
    metric = factory.SubFactory(BillableMetricFactory)
    charge_model = Charge.Model.STANDARD
    properties = factory.LazyFunction(lambda: {"amount": "0.002"})

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        validate_properties(kwargs["charge_model"], kwargs["properties"])
        validate_charge_filters(
            kwargs["charge_model"], kwargs.get("filters") or [], kwargs["metric"].filters
        )
        return super()._create(model_class, *args, **kwargs)


def _current_period(o) -> tuple:
    if o.billing_anchor_at is None:
        return None, None
    return period_containing(
        interval=o.plan.interval,
        billing_time=o.billing_time,
        started_at=o.billing_anchor_at,
        moment=o.billing_anchor_at,
    )


class SubscriptionFactory(DjangoModelFactory):
    """A subscription as `subscription_create` leaves it: active from `start_at` (now by
    default), in the billing period that contains its start, with its open phase. A
    start in the past is not advanced: run `tests.helpers.invoicing.close_periods` (the
    beat job's work) to close the periods since. `pending=True`: starts in three days."""

    class Meta:
        model = Subscription

    class Params:
        pending = factory.Trait(
            status=Subscription.Status.PENDING,
            start_at=factory.LazyFunction(lambda: timezone.now() + timedelta(days=3)),
        )

    external_id = factory.Sequence(lambda n: f"sub-{n}")
    customer = factory.SubFactory(CustomerFactory)
    plan = factory.SubFactory(
        PlanFactory,
        currency=factory.LazyAttribute(lambda p: p.factory_parent.customer.currency or "USD"),
    )
    status = Subscription.Status.ACTIVE
    billing_time = Subscription.BillingTime.CALENDAR
    start_at = factory.LazyFunction(timezone.now)
    started_at = factory.LazyAttribute(
        lambda o: o.start_at if o.status == Subscription.Status.ACTIVE else None
    )
    billing_anchor_at = factory.SelfAttribute("started_at")
    trial_ends_at = factory.LazyAttribute(
        lambda o: (
            o.started_at + timedelta(days=o.plan.trial_days)
            if o.started_at and o.plan.trial_days
            else None
        )
    )
    current_period_start = factory.LazyAttribute(lambda o: _current_period(o)[0])
    current_period_end = factory.LazyAttribute(lambda o: _current_period(o)[1])

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        customer, plan = kwargs["customer"], kwargs["plan"]
        if customer.currency and customer.currency != plan.currency:
            raise ValueError(
                f"plan {plan.code} is in {plan.currency}, customer {customer.external_id} "
                f"pays in {customer.currency}: the service would refuse this subscription"
            )
        subscription = super()._create(model_class, *args, **kwargs)
        if subscription.status == Subscription.Status.ACTIVE:
            SubscriptionPhase.objects.create(
                subscription=subscription,
                plan=subscription.plan,
                overrides=subscription.overrides,
                started_at=subscription.started_at,
                reason=SubscriptionPhase.Reason.CREATED,
            )
        return subscription


# --- Invoices and payments -------------------------------------------------------------
def _major(amount_cents: int, units: Decimal, currency: str) -> Decimal:
    if not units:
        return Decimal(0)
    major = Decimal(amount_cents) / (Decimal(10) ** currency_exponent(currency))
    return (major / units).quantize(Decimal("0.000000000001"), rounding=ROUND_HALF_UP)


def period_lines(plan: Plan) -> list[dict]:
    """The lines the local engine writes for a whole period of `plan` without usage: the
    fixed fee, then each charge at zero units."""
    label = "in advance" if plan.pay_in_advance else "in arrears"
    lines = [
        {
            "fee_type": InvoiceLine.FeeType.SUBSCRIPTION,
            "description": f"{plan.name} {label}",
            "plan_code": plan.code,
            "units": Decimal(1),
            "amount_cents": plan.amount_cents,
        }
    ]
    for charge in plan.charges.select_related("metric"):
        lines.append(
            {
                "fee_type": InvoiceLine.FeeType.CHARGE,
                "description": charge.metric.code,
                "plan_code": plan.code,
                "metric": charge.metric,
                "charge_model": charge.charge_model,
                "properties": charge.properties,
                "units": Decimal(0),
                "amount_cents": 0,
            }
        )
    return lines


class InvoiceLineFactory(DjangoModelFactory):
    """One line. Build lines through `InvoiceFactory(lines=[...])`, which keeps the
    invoice's totals equal to them; a line added to an issued invoice is refused."""

    class Meta:
        model = InvoiceLine

    invoice = factory.SubFactory("tests.factories.InvoiceFactory", lines=[])
    position = factory.Sequence(lambda n: n + 1)
    fee_type = InvoiceLine.FeeType.SUBSCRIPTION
    description = "Fee"
    units = Decimal(1)
    amount_cents = 4900
    unit_amount = factory.LazyAttribute(
        lambda o: _major(o.amount_cents, Decimal(o.units), o.invoice.currency)
    )
    from_datetime = factory.SelfAttribute("invoice.period_start")
    to_datetime = factory.SelfAttribute("invoice.period_end")


class InvoiceFactory(DjangoModelFactory):
    """A local invoice for October 2026 of a subscription (a new one unless given): its
    lines are the period's, as the local engine writes them without usage (pass `lines`,
    a list of InvoiceLine field dicts each with its `amount_cents`, to choose them), its
    totals theirs with the
    customer's tax rate. A draft; `finalized=True` issues it with a number of its own
    series (TEST-000001...) without asking for payment: to have collection queued, build
    a draft and call `billing.invoicing.services.invoice_finalize`."""

    class Meta:
        model = Invoice

    class Params:
        finalized = factory.Trait(
            status=Invoice.Status.FINALIZED,
            issuer="TEST",
            number=factory.Sequence(lambda n: f"TEST-{n + 1:06d}"),
            issued_at=factory.LazyFunction(timezone.now),
            due_date=factory.LazyFunction(
                lambda: (timezone.now() + timedelta(days=settings.INVOICE_DUE_DAYS)).date()
            ),
        )

    subscription = factory.SubFactory(
        SubscriptionFactory, start_at=factory.SelfAttribute("..period_start")
    )
    customer = factory.Maybe(
        "subscription",
        yes_declaration=factory.SelfAttribute("subscription.customer"),
        no_declaration=factory.SubFactory(CustomerFactory),
    )
    period_start = OCT_1
    period_end = NOV_1
    currency = factory.LazyAttribute(
        lambda o: o.subscription.plan.currency if o.subscription else o.customer.currency
    )
    lines = factory.LazyAttribute(
        lambda o: (
            period_lines(o.subscription.plan)
            if o.subscription
            else [{"description": "Fee", "amount_cents": 4900}]
        )
    )
    fees_amount_cents = factory.LazyAttribute(
        lambda o: sum(line["amount_cents"] for line in o.lines if line.get("fee_type") != "coupon")
    )
    coupons_amount_cents = factory.LazyAttribute(
        lambda o: -sum(line["amount_cents"] for line in o.lines if line.get("fee_type") == "coupon")
    )
    subtotal_amount_cents = factory.LazyAttribute(
        lambda o: o.fees_amount_cents - o.coupons_amount_cents
    )
    tax_rate = factory.LazyAttribute(lambda o: Decimal(o.customer.tax_rate))
    taxes_amount_cents = factory.LazyAttribute(
        lambda o: int(
            (Decimal(o.subtotal_amount_cents) * o.tax_rate / 100).quantize(
                Decimal(1), rounding=ROUND_HALF_UP
            )
        )
    )
    total_amount_cents = factory.LazyAttribute(
        lambda o: o.subtotal_amount_cents + o.taxes_amount_cents
    )

    @classmethod
    def _build(cls, model_class, *args, lines=(), **kwargs):
        return super()._build(model_class, *args, **kwargs)

    @classmethod
    def _create(cls, model_class, *args, lines=(), **kwargs):
        subscription, customer = kwargs.get("subscription"), kwargs["customer"]
        if subscription is not None and subscription.customer_id != customer.pk:
            raise ValueError(
                "the invoice's customer is not its subscription's: pass the subscription "
                "(or subscription__customer=...) rather than the customer"
            )
        status = kwargs.get("status", Invoice.Status.DRAFT)
        if not lines or status == Invoice.Status.DRAFT:
            invoice = super()._create(model_class, *args, **kwargs)
        else:
            invoice = super()._create(model_class, *args, **{**kwargs, "status": "draft"})
        for position, line in enumerate(lines, start=1):
            InvoiceLineFactory(invoice=invoice, position=position, **line)
        if invoice.status != status:
            # The lines are in: issue it, in one UPDATE, as invoice_finalize does.
            model_class.objects.filter(pk=invoice.pk).update(status=status)
            invoice.status = status
        return invoice


class PaymentAttemptFactory(DjangoModelFactory):
    """A declined attempt on a finalized invoice, for its whole amount; `processing=True`
    is one in flight (Stripe not answered yet), `succeeded=True` one that was paid."""

    class Meta:
        model = PaymentAttempt

    class Params:
        processing = factory.Trait(
            status=PaymentAttempt.Status.PROCESSING,
            stripe_payment_intent_id=None,
            stripe_status="",
            failure_code="",
            failure_message="",
            completed_at=None,
        )
        succeeded = factory.Trait(
            status=PaymentAttempt.Status.SUCCEEDED,
            stripe_status="succeeded",
            failure_code="",
            failure_message="",
        )

    invoice = factory.SubFactory(InvoiceFactory, finalized=True)
    number = factory.LazyAttribute(lambda o: o.invoice.attempts.count() + 1)
    status = PaymentAttempt.Status.FAILED
    amount_cents = factory.SelfAttribute("invoice.total_amount_cents")
    currency = factory.SelfAttribute("invoice.currency")
    idempotency_key = factory.LazyAttribute(lambda o: f"invoice:{o.invoice.pk}:pay:{o.number}")
    stripe_payment_intent_id = factory.Sequence(lambda n: f"pi_test_{n:012d}")
    stripe_status = "requires_payment_method"
    failure_code = "card_declined"
    failure_message = "Your card was declined."
    completed_at = factory.LazyFunction(timezone.now)


# --- Provider plumbing -----------------------------------------------------------------
class OutboxMessageFactory(DjangoModelFactory):
    """A pending Stripe sync of a customer, as `outbox_record` writes it (nothing is
    published to the broker)."""

    class Meta:
        model = OutboxMessage

    provider = OutboxMessage.Provider.STRIPE
    action = "customer.sync"
    object_type = "customers.customer"
    object_id = factory.LazyFunction(lambda: str(uuid.uuid4()))


class WebhookEventFactory(DjangoModelFactory):
    """A verified event as the intake stores it: a Stripe `customer.updated` unless given
    another `payload` (Stripe's event, or Lago's body with `provider="lago"`).
    `processed=True` or `failed=True` for one a worker has been through."""

    class Meta:
        model = WebhookEvent

    class Params:
        payload = factory.LazyAttribute(
            lambda o: (
                stripe_event("customer.updated", {"id": "cus_test", "object": "customer"})
                if o.provider == WebhookEvent.Provider.STRIPE
                else {
                    "webhook_type": "customer.updated",
                    "object_type": "customer",
                    "customer": {"lago_id": str(uuid.uuid4()), "external_id": "customer-1"},
                }
            )
        )
        processed = factory.Trait(
            status=WebhookEvent.Status.PROCESSED,
            attempts=1,
            processed_at=factory.LazyFunction(timezone.now),
        )
        failed = factory.Trait(status=WebhookEvent.Status.FAILED, attempts=1, last_error="boom")

    provider = WebhookEvent.Provider.STRIPE
    # Stripe's evt_… id; Lago's X-Lago-Unique-Key.
    event_id = factory.LazyAttribute(
        lambda o: o.payload["id"] if o.provider == "stripe" else str(uuid.uuid4())
    )
    type = factory.LazyAttribute(
        lambda o: o.payload["type"] if o.provider == "stripe" else o.payload["webhook_type"]
    )
    body = factory.LazyAttribute(lambda o: json.dumps(o.payload))
    body_sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.body.encode()).hexdigest())
    object_id = factory.LazyAttribute(
        lambda o: WEBHOOK_PROVIDERS[o.provider].describe(o.payload)[0]
    )
    provider_created_at = factory.LazyAttribute(
        lambda o: WEBHOOK_PROVIDERS[o.provider].describe(o.payload)[1]
    )
