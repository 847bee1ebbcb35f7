"""Provider-neutral types: what the rest of the service knows of Stripe and Lago."""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

# The provider errors are domain errors, owned by core so every layer can map them.
from core.exceptions import ProviderError, ProviderUnavailable

__all__ = ["ProviderError", "ProviderUnavailable"]


@dataclass(frozen=True)
class CustomerData:
    """A customer as the providers need it, decrypted: never log an instance."""

    id: str
    external_id: str
    name: str = ""
    email: str = ""
    currency: str = ""
    country: str = ""
    address_line1: str = ""
    city: str = ""
    zipcode: str = ""
    state: str = ""
    tax_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"CustomerData(id={self.id!r}, external_id={self.external_id!r})"


@dataclass(frozen=True)
class RemoteObject:
    """A Stripe object we keep whole, for dj-stripe's mirror of it."""

    provider: str
    id: str
    raw: dict[str, Any]


class WebhookSignatureError(Exception):
    """A webhook whose signature is missing, wrong or stale: nothing in it may be trusted."""

    code = "invalid_signature"


class WebhookPayloadError(WebhookSignatureError):
    """Signed, but not a webhook we can key (not JSON, no string id or type): refused like
    a bad signature, under its own code so the sender is not told its signature is wrong."""

    code = "invalid_payload"


@dataclass(frozen=True)
class SignedWebhook:
    """A webhook whose signature checked out: what intake stores. `event_id` is the
    provider's dedupe key (Stripe's `evt_…`, Lago's `X-Lago-Unique-Key`). `payload` is the
    body as JSON, kept for the record; handlers read it through `stripe.parse_event` or
    `lago.parse_webhook`, which raise `ProviderError` (`malformed`) on what they cannot read."""

    event_id: str
    event_type: str
    payload: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class PaymentMethodData:
    """What we keep of a Stripe payment method: enough to recognise it, never to use it."""

    id: str
    customer: str | None
    type: str
    brand: str = ""
    last4: str = ""
    exp_month: int | None = None
    exp_year: int | None = None
    fingerprint: str = ""
    billing_country: str = ""


@dataclass(frozen=True)
class PaymentResult:
    """A PaymentIntent as collection needs it. `status` is Stripe's (`succeeded`,
    `processing`, `requires_payment_method`, `requires_action`, `canceled`, ...)."""

    id: str
    status: str
    amount: int
    currency: str
    metadata: dict[str, Any] = field(default_factory=dict)
    failure_code: str = ""
    failure_message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def pending(self) -> bool:
        return self.status == "processing"


@dataclass(frozen=True)
class SetupIntentData:
    """A SetupIntent for Stripe.js to collect a card with; the secret goes to the front end
    only, so it is kept out of reprs (and so out of logs)."""

    id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class RefundResult:
    """A Stripe refund as we keep it."""

    id: str
    status: str  # pending, requires_action, succeeded, failed, canceled
    amount: int
    currency: str
    payment_intent_id: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    failure_reason: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "canceled")


@dataclass(frozen=True)
class StripeCharge:
    """A charge as refunds need it."""

    id: str
    payment_intent_id: str | None
    amount: int
    amount_refunded: int
    refunded: bool

    @property
    def fully_refunded(self) -> bool:
        return self.refunded or self.amount_refunded >= self.amount > 0


@dataclass(frozen=True)
class StripeEvent:
    """A Stripe event as the handlers need it.

    `data` is the event's object as Stripe sent it: only dj-stripe's mirror reads it (it
    keeps the whole object). The typed views of the object are filled in for the object
    types we act on: `payment_intent` for a PaymentIntent, `charge` for a Charge.
    """

    id: str
    type: str
    created: datetime | None
    object_type: str
    object_id: str
    # The Stripe customer the object belongs to (the object itself for a customer).
    customer_id: str | None
    data: dict[str, Any] = field(repr=False)
    payment_intent: PaymentResult | None = None
    charge: StripeCharge | None = None


# --- Lago: what we send ----------------------------------------------------------------
@dataclass(frozen=True)
class MetricFilter:
    """One event property a metric can be priced by, with its values (Lago's metric filter)."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class MetricData:
    """A billable metric. `aggregation` is ours (`count`, `sum`, `max`, `unique_count`,
    `latest`, `weighted_sum`); the client names it as Lago does."""

    code: str
    name: str
    aggregation: str
    field_name: str = ""
    description: str = ""
    filters: tuple[MetricFilter, ...] = ()
    recurring: bool = False
    weighted_interval: str = ""


@dataclass(frozen=True)
class ChargeFilterData:
    """One of a charge's filters (Lago's charge filter): the metric filter values it
    matches, and the properties that price the events it matches."""

    values: dict[str, tuple[str, ...]]
    properties: dict[str, Any]
    invoice_display_name: str | None = None


@dataclass(frozen=True)
class ChargeData:
    """A plan's charge. Lago names the metric by its Lago id, not its code."""

    billable_metric_lago_id: str
    charge_model: str
    properties: dict[str, Any] = field(default_factory=dict)
    filters: tuple[ChargeFilterData, ...] = ()
    prorated: bool = False


@dataclass(frozen=True)
class CommitmentData:
    """A plan's minimum commitment per period (Lago's MinimumCommitmentInput)."""

    amount_cents: int
    invoice_display_name: str = ""


@dataclass(frozen=True)
class PlanData:
    code: str
    name: str
    interval: str
    amount_cents: int
    currency: str
    description: str = ""
    pay_in_advance: bool = False
    trial_days: int = 0
    charges: tuple[ChargeData, ...] = ()
    minimum_commitment: CommitmentData | None = None


@dataclass(frozen=True)
class ChargeOverride:
    """New properties for one charge of the plan, named by the charge's Lago id."""

    charge_lago_id: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class PlanOverrides:
    """One subscription's departures from its plan (None: the plan's own)."""

    amount_cents: int | None = None
    charges: tuple[ChargeOverride, ...] = ()
    minimum_commitment: CommitmentData | None = None


@dataclass(frozen=True)
class SubscriptionData:
    """A subscription as Lago should hold it. Creating one with an external_id Lago
    already holds changes its plan (Lago decides upgrade or downgrade)."""

    external_id: str
    external_customer_id: str
    plan_code: str
    billing_time: str
    subscription_at: datetime | None
    name: str = ""
    overrides: PlanOverrides | None = None


@dataclass(frozen=True)
class UsageEventData:
    """One usage event. `transaction_id` is Lago's dedupe key: resending it is harmless."""

    transaction_id: str
    external_subscription_id: str
    code: str
    timestamp: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    # The event's own amount in minor units, a decimal string (a dynamic charge).
    precise_total_amount_cents: str | None = None


# --- Lago: what we read back -----------------------------------------------------------
@dataclass(frozen=True)
class LagoCustomer:
    lago_id: str
    external_id: str
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class LagoMetric:
    lago_id: str
    code: str


@dataclass(frozen=True)
class LagoCharge:
    lago_id: str
    billable_metric_lago_id: str


@dataclass(frozen=True)
class LagoPlan:
    lago_id: str
    code: str
    charges: tuple[LagoCharge, ...] = ()


@dataclass(frozen=True)
class LagoSubscription:
    """One of Lago's records of a subscription (one external_id may have several: a plan
    change ends one record and starts another). `status` is Lago's: `pending`, `active`,
    `canceled`, `terminated`."""

    lago_id: str
    external_id: str
    external_customer_id: str
    plan_code: str
    status: str
    # A downgrade Lago holds for the end of the period, as a pending record.
    next_plan_code: str | None = None
    subscription_at: datetime | None = None
    ending_at: datetime | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    canceled_at: datetime | None = None
    terminated_at: datetime | None = None


@dataclass(frozen=True)
class LagoBillingPeriod:
    """The period an invoice bills, half-open as ours are: `end` is the first second after
    it (Lago shows the last second of the period)."""

    external_subscription_id: str | None
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class LagoFee:
    item_type: str
    item_code: str
    item_name: str
    units: Decimal
    precise_unit_amount: Decimal
    amount_cents: int
    invoice_display_name: str = ""
    # Pricing by dimension: the charge filter's display name and the pricing group.
    filter_display_name: str = ""
    grouped_by: dict[str, str | None] = field(default_factory=dict)
    # Lago's fee id: what a credit note's items name.
    lago_id: str = ""


@dataclass(frozen=True)
class LagoInvoice:
    """A Lago invoice. Lists carry the plain object (`detailed` False: no billing period,
    no fees); fetch it by id for those. A preview has no id (`lago_id` empty)."""

    lago_id: str
    number: str
    status: str
    payment_status: str
    currency: str
    customer_external_id: str | None
    fees_amount_cents: int = 0
    taxes_amount_cents: int = 0
    total_amount_cents: int = 0
    # Lago's steps from fees to what is due: total = fees - coupons + taxes - prepaid
    # credits - credit notes (the customer's credit balance).
    coupons_amount_cents: int = 0
    prepaid_credit_amount_cents: int = 0
    credit_notes_amount_cents: int = 0
    invoice_type: str = "subscription"
    created_at: datetime | None = None
    updated_at: datetime | None = None
    payment_due_date: date | None = None
    detailed: bool = False
    billing_period: LagoBillingPeriod | None = None
    fees: tuple[LagoFee, ...] = ()


@dataclass(frozen=True)
class LagoWebhook:
    """A Lago webhook: its envelope, and its object typed for the object types we act on.

    `object_id` and `changed_at` are read from any object (Lago's id, else the external
    one; the later of `updated_at` and `created_at`), for the record kept of every event.
    `events_errors` maps an error kind to the transaction ids Lago refused with it.
    """

    webhook_type: str
    object_type: str
    object_id: str = ""
    changed_at: datetime | None = None
    customer: LagoCustomer | None = None
    subscription: LagoSubscription | None = None
    invoice: LagoInvoice | None = None
    events_errors: dict[str, tuple[str, ...]] = field(default_factory=dict)


# --- Corrections (credit notes, prepaid credits, coupons, add-ons) ------------------------
@dataclass(frozen=True)
class LagoRef:
    """What we keep of an object Lago created: its id, and the fields we match it by."""

    lago_id: str
    code: str = ""
    name: str = ""
    status: str = ""


@dataclass(frozen=True)
class CouponData:
    code: str
    name: str
    description: str
    coupon_type: str  # fixed_amount | percentage
    amount_cents: int | None
    amount_currency: str | None
    percentage_rate: Decimal | None
    frequency: str  # once | recurring | forever
    frequency_duration: int | None
    reusable: bool
    expiration_at: datetime | None


@dataclass(frozen=True)
class AppliedCouponData:
    external_customer_id: str
    coupon_code: str
    frequency: str
    frequency_duration: int | None
    amount_cents: int | None
    amount_currency: str | None
    percentage_rate: Decimal | None


@dataclass(frozen=True)
class AddOnData:
    code: str
    name: str
    invoice_display_name: str
    description: str
    amount_cents: int
    amount_currency: str


@dataclass(frozen=True)
class WalletData:
    code: str  # ours (the wallet's id): how a retried create finds the wallet it made
    name: str
    external_customer_id: str
    currency: str
    rate_amount: Decimal
    expiration_at: datetime | None


@dataclass(frozen=True)
class OneOffFeeData:
    add_on_code: str
    units: Decimal
    unit_amount_cents: int
    description: str


@dataclass(frozen=True)
class CreditNoteData:
    credit_note_id: str  # ours, kept in Lago's metadata: how a retry finds what it made
    external_customer_id: str
    invoice_lago_id: str
    reason: str
    description: str
    items: tuple[tuple[str, int], ...]  # (Lago fee id, amount before tax)
    refund_amount_cents: int
    credit_amount_cents: int
    offset_amount_cents: int


@dataclass(frozen=True)
class LagoCreditNote:
    lago_id: str
    number: str
    credit_note_id: str  # from the metadata we sent ("" for one made in Lago)
    total_amount_cents: int
    credit_status: str
