"""Writes to customers. Views, admin and tasks call these; nothing else saves a Customer."""

import logging
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from billing.providers import provider_enabled, stripe
from billing.providers.base import PaymentMethodData, SetupIntentData
from billing.sync.outbox import outbox_record_sync
from core.exceptions import Conflict, ProviderError, UnprocessableEntity
from core.locks import advisory_lock_waiting, advisory_xact_lock
from customers import events
from customers.models import Customer, PaymentMethod

logger = logging.getLogger(__name__)

UPDATABLE_FIELDS = (
    "name",
    "email",
    "currency",
    "country",
    "address_line1",
    "city",
    "zipcode",
    "state",
    "tax_rate",
    "tax_id",
    "metadata",
)


def customer_create(*, external_id: str, **fields: Any) -> Customer:
    customer = Customer(external_id=external_id, **_only_updatable(fields))
    customer.full_clean(exclude=["stripe_customer_id", "lago_id"], validate_unique=False)
    try:
        # The unique constraint decides between racing creates, not a prior lookup.
        with transaction.atomic():
            customer.save()
    except IntegrityError as exc:
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") == (
            "customers_customer_external_id_key"
        ):
            raise Conflict(
                f"A customer with external_id '{external_id}' already exists.",
                code="customer_exists",
            ) from exc
        raise
    return customer


def customer_update(*, customer: Customer, **fields: Any) -> Customer:
    changes = _only_updatable(fields)
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        customer_check_update(customer=locked, **changes)
        for name, value in changes.items():
            setattr(locked, name, value)
        if changes:
            locked.full_clean(exclude=["stripe_customer_id", "lago_id"], validate_unique=False)
            locked.save(update_fields=[*changes, "updated_at"])
    return locked


def customer_check_update(*, customer: Customer, **fields: Any) -> None:
    """Refuse what the domain forbids in an update of `customer` (as it stands), before
    anything is written. `customer_update` calls it under the row lock; the admin's form
    calls it too, so a refusal shows on the form rather than as an error page."""
    currency = fields.get("currency")
    # Subscriptions and invoices are priced in the currency they were made in; a customer
    # who changed currency under them would be billed in a mix.
    if (
        currency is not None
        and currency != customer.currency
        and any(events.currency_in_use.publish(customer=customer))
    ):
        raise Conflict(
            f"Customer '{customer.external_id}' has subscriptions or invoices: its "
            "currency cannot change. Create a new customer for the new currency.",
            code="currency_locked",
            attr="currency",
        )


def _only_updatable(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(UPDATABLE_FIELDS)
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    return {
        name: ("" if value is None and name != "metadata" else value)
        for name, value in fields.items()
    }


# --- Payment methods -------------------------------------------------------------------
# Which cards a customer has, and which is the default, are Stripe's; we keep a copy.
# Every change to a customer's cards, from our API or from a webhook, runs under that
# customer's card lock: a PostgreSQL advisory lock, so no row is locked while Stripe is
# called, yet one change is applied whole, in Stripe and here, before the next reads Stripe.
# - The API's card calls need Stripe's answer before we reply, so they call Stripe inside
#   the request's transaction (its idempotency record commits with the work): the one
#   exception the README allows, with STRIPE_TIMEOUT_SECONDS on each call. They hold the
#   lock until that transaction ends.
# - Webhooks read Stripe first, outside any transaction, holding the lock from before the
#   read until their apply has committed, so no API change lands in between.
CARD_LOCK_TIMEOUT = 15.0


def _card_lock_key(customer_id: Any) -> str:
    return f"customer:{customer_id}:cards"


def _locked_with_stripe(customer: Customer) -> Customer:
    if not provider_enabled("stripe"):
        raise Conflict("Stripe is not configured for this service.", code="stripe_disabled")
    advisory_xact_lock(_card_lock_key(customer.pk), timeout=CARD_LOCK_TIMEOUT)
    locked = Customer.objects.get(pk=customer.pk)
    if not locked.stripe_customer_id:
        # Only the outbox creates Stripe customers (one at a time, never twice); it runs
        # seconds after the customer is created.
        raise Conflict(
            "This customer is not in Stripe yet; retry in a few seconds.",
            code="stripe_customer_pending",
        )
    return locked


@transaction.atomic
def setup_intent_create(*, customer: Customer) -> SetupIntentData:
    """A SetupIntent for Stripe.js to collect a card; the card never reaches us."""
    locked = _locked_with_stripe(customer)
    return stripe.setup_intent_create(
        stripe_customer_id=locked.stripe_customer_id,
        idempotency_key=f"customer:{locked.pk}:setup_intent:{uuid.uuid4()}",
    )


@transaction.atomic
def payment_method_add(
    *, customer: Customer, stripe_payment_method_id: str, set_default: bool = False
) -> PaymentMethod:
    locked = _locked_with_stripe(customer)
    known = PaymentMethod.objects.filter(
        stripe_payment_method_id=stripe_payment_method_id, status=PaymentMethod.Status.ACTIVE
    ).first()
    if known is not None and known.customer_id != locked.pk:
        raise _belongs_to_other_customer()
    current = _stripe_payment_method(stripe_payment_method_id)
    if current.customer and current.customer != locked.stripe_customer_id:
        raise _belongs_to_other_customer()
    if current.customer != locked.stripe_customer_id:
        # Attach by the id Stripe gave back: test ids like pm_card_visa mint a new method.
        current = stripe.payment_method_attach(
            payment_method_id=current.id,
            stripe_customer_id=locked.stripe_customer_id,
            idempotency_key=f"customer:{locked.pk}:attach:{current.id}",
        )
    method = _store_payment_method(customer=locked, data=current)
    if set_default and not method.is_default:
        method = _make_default(customer=locked, method=method)
    outbox_record_sync(instance=method, action="payment_method.mirror")
    return method


def _stripe_payment_method(stripe_payment_method_id: str) -> PaymentMethodData:
    try:
        return stripe.payment_method_retrieve(payment_method_id=stripe_payment_method_id)
    except ProviderError as exc:
        if exc.retryable or exc.http_status != 404:
            raise
        raise UnprocessableEntity(
            f"Stripe has no payment method '{stripe_payment_method_id}'.",
            code="resource_missing",
            attr="stripe_payment_method_id",
        ) from exc


@transaction.atomic
def payment_method_set_default(
    *, customer: Customer, payment_method: PaymentMethod
) -> PaymentMethod:
    locked = _locked_with_stripe(customer)
    method = PaymentMethod.objects.get(pk=payment_method.pk, customer=locked)
    if method.status != PaymentMethod.Status.ACTIVE:
        raise Conflict(
            "A removed payment method cannot be the default.", code="payment_method_detached"
        )
    return _make_default(customer=locked, method=method)


@dataclass(frozen=True)
class PaymentMethodRemoval:
    method: PaymentMethod
    # Issued invoices still owed that no card is left to collect (0 while a card remains):
    # allowed, but the caller is told.
    open_invoices_left_without_card: int


@transaction.atomic
def payment_method_remove(
    *, customer: Customer, payment_method: PaymentMethod
) -> PaymentMethodRemoval:
    """Detach in Stripe and keep the row, marked detached, for history.

    Removing the default leaves the customer with no default: choosing another card to
    charge is a decision for the customer or staff, not for us. The detach comes first, so
    a failure leaves both sides as they were.
    """
    locked = _locked_with_stripe(customer)
    method = PaymentMethod.objects.get(pk=payment_method.pk, customer=locked)
    if method.status == PaymentMethod.Status.DETACHED:
        return PaymentMethodRemoval(method=method, open_invoices_left_without_card=0)
    stripe.payment_method_detach(
        payment_method_id=method.stripe_payment_method_id,
        idempotency_key=f"payment_method:{method.pk}:detach",
    )
    _mark_detached(method)
    held = stripe.customer_default_payment_method(stripe_customer_id=locked.stripe_customer_id)
    if held == method.stripe_payment_method_id:
        # Stripe clears a detached card's default itself; the emulator does not.
        _clear_default(customer=locked)
    else:
        _apply_default(customer=locked, stripe_payment_method_id=held)
    method.refresh_from_db()
    return PaymentMethodRemoval(
        method=method, open_invoices_left_without_card=_open_invoices_without_card(locked)
    )


def _open_invoices_without_card(customer: Customer) -> int:
    """Removing the last card of a customer who owes money is allowed, but flagged: the
    count of open invoices that can no longer be collected (0 when a card remains)."""
    if PaymentMethod.objects.filter(customer=customer, status=PaymentMethod.Status.ACTIVE).exists():
        return 0
    owed = sum(events.open_invoices_count.publish(customer=customer))
    if owed:
        logger.warning(
            "last payment method removed while invoices are open",
            extra={"customer_id": str(customer.pk), "open_invoices": owed},
        )
    return owed


def _mark_detached(method: PaymentMethod) -> None:
    method.status = PaymentMethod.Status.DETACHED
    method.is_default = False
    method.detached_at = timezone.now()
    method.save(update_fields=["status", "is_default", "detached_at", "updated_at"])


def _make_default(*, customer: Customer, method: PaymentMethod) -> PaymentMethod:
    held = stripe.customer_set_default_payment_method(
        stripe_customer_id=customer.stripe_customer_id,
        payment_method_id=method.stripe_payment_method_id,
        idempotency_key=f"customer:{customer.pk}:default:{uuid.uuid4()}",
    )
    _apply_default(customer=customer, stripe_payment_method_id=held)
    method.refresh_from_db()
    return method


def _clear_default(*, customer: Customer) -> None:
    stripe.customer_set_default_payment_method(
        stripe_customer_id=customer.stripe_customer_id,
        payment_method_id=None,
        idempotency_key=f"customer:{customer.pk}:default:{uuid.uuid4()}",
    )
    _apply_default(customer=customer, stripe_payment_method_id=None)


def _apply_default(*, customer: Customer, stripe_payment_method_id: str | None) -> None:
    """Make our is_default flags say what Stripe says (the caller holds the customer lock)."""
    PaymentMethod.objects.filter(customer=customer, is_default=True).exclude(
        stripe_payment_method_id=stripe_payment_method_id or ""
    ).update(is_default=False)
    if stripe_payment_method_id:
        made_default = PaymentMethod.objects.filter(
            customer=customer,
            stripe_payment_method_id=stripe_payment_method_id,
            status=PaymentMethod.Status.ACTIVE,
        ).update(is_default=True)
        if made_default:
            # Work waiting for a default card (invoices to collect) resumes now.
            events.default_payment_method_set.publish(customer=customer)


def _store_payment_method(*, customer: Customer, data: PaymentMethodData) -> PaymentMethod:
    method, _ = PaymentMethod.objects.update_or_create(
        stripe_payment_method_id=data.id,
        defaults={
            "customer": customer,
            "type": data.type,
            "brand": data.brand,
            "last4": data.last4,
            "exp_month": data.exp_month,
            "exp_year": data.exp_year,
            "fingerprint": data.fingerprint,
            "billing_country": data.billing_country,
            "status": PaymentMethod.Status.ACTIVE,
            "detached_at": None,
        },
    )
    return method


def _belongs_to_other_customer() -> Conflict:
    return Conflict(
        "This payment method is attached to another customer.",
        code="payment_method_belongs_to_other_customer",
    )


@dataclass(frozen=True)
class PaymentMethodState:
    """A payment method as Stripe holds it now, and its owner's default card there."""

    current: PaymentMethodData
    owner_default: str | None


@contextmanager
def payment_method_fetch(*, stripe_payment_method_id: str) -> Iterator[PaymentMethodState]:
    """Read the payment method (and its owner's default) from Stripe under the card lock of
    every customer it may concern; the lock stays held until the caller's apply is done.

    Reading Stripe's current state, not an event's, makes the order of events irrelevant;
    the lock means a detach made through the API meanwhile cannot be undone by it.
    """
    first_look = stripe.payment_method_retrieve(payment_method_id=stripe_payment_method_id)
    known = PaymentMethod.objects.filter(stripe_payment_method_id=first_look.id).first()
    concerned = set(
        Customer.objects.filter(
            models.Q(stripe_customer_id__in={first_look.customer} - {None})
            | models.Q(pk__in={known.customer_id} if known else set())
        ).values_list("pk", flat=True)
    )
    with ExitStack() as locks:
        # A fixed order, so two readers of one card never wait on each other in a circle.
        for customer_id in sorted(concerned, key=str):
            locks.enter_context(
                advisory_lock_waiting(_card_lock_key(customer_id), timeout=CARD_LOCK_TIMEOUT)
            )
        current = stripe.payment_method_retrieve(payment_method_id=first_look.id)
        owner = Customer.objects.filter(stripe_customer_id=current.customer or "").first()
        if owner is not None and owner.pk not in concerned:
            # Moved to another of our customers between the two looks: lock it too.
            locks.enter_context(
                advisory_lock_waiting(_card_lock_key(owner.pk), timeout=CARD_LOCK_TIMEOUT)
            )
            current = stripe.payment_method_retrieve(payment_method_id=first_look.id)
        owner_default = (
            stripe.customer_default_payment_method(stripe_customer_id=current.customer)
            if current.customer
            else None
        )
        yield PaymentMethodState(current=current, owner_default=owner_default)


@transaction.atomic
def payment_method_apply(*, state: PaymentMethodState) -> PaymentMethod | None:
    """Make our rows say what `payment_method_fetch` read (no network here)."""
    current = state.current
    owner = (
        Customer.objects.filter(stripe_customer_id=current.customer).first()
        if current.customer
        else None
    )
    if owner is not None:
        method = _store_payment_method(customer=owner, data=current)
        _apply_default(customer=owner, stripe_payment_method_id=state.owner_default)
        method.refresh_from_db()
        return method
    known = PaymentMethod.objects.filter(stripe_payment_method_id=current.id).first()
    if known is not None and known.status == PaymentMethod.Status.ACTIVE:
        _mark_detached(known)
    return known


@dataclass(frozen=True)
class CustomerDefaultState:
    stripe_customer_id: str
    default: str | None
    # The default card as Stripe holds it, when we have no row for it yet.
    unknown_default: PaymentMethodData | None


@contextmanager
def customer_default_fetch(*, stripe_customer_id: str) -> Iterator[CustomerDefaultState | None]:
    """Read the customer's default card from Stripe under its card lock (held until the
    caller's apply is done), so a set-default made through our API cannot be undone by a
    late event. None when no customer of ours has this Stripe id."""
    customer = Customer.objects.filter(stripe_customer_id=stripe_customer_id).first()
    if customer is None:
        yield None
        return
    with advisory_lock_waiting(_card_lock_key(customer.pk), timeout=CARD_LOCK_TIMEOUT):
        held = stripe.customer_default_payment_method(stripe_customer_id=stripe_customer_id)
        unknown = None
        if held and not PaymentMethod.objects.filter(stripe_payment_method_id=held).exists():
            unknown = stripe.payment_method_retrieve(payment_method_id=held)
        yield CustomerDefaultState(
            stripe_customer_id=stripe_customer_id, default=held, unknown_default=unknown
        )


@transaction.atomic
def customer_default_apply(*, state: CustomerDefaultState | None) -> Customer | None:
    """Make our default flag match what `customer_default_fetch` read (no network here)."""
    if state is None:
        return None
    customer = Customer.objects.filter(stripe_customer_id=state.stripe_customer_id).first()
    if customer is None:
        return None
    unknown = state.unknown_default
    if unknown is not None and unknown.customer == customer.stripe_customer_id:
        _store_payment_method(customer=customer, data=unknown)
    _apply_default(customer=customer, stripe_payment_method_id=state.default)
    return customer


@transaction.atomic
def customer_stripe_deleted(*, customer: Customer) -> None:
    """The Stripe customer was deleted (from the dashboard): its cards went with it.
    Our customer stays (it has history); its link is cleared. A later save re-creates it
    in Stripe, but not within 24 hours of the first creation, whose idempotency key Stripe
    would replay (see the README's known limits)."""
    advisory_xact_lock(_card_lock_key(customer.pk), timeout=CARD_LOCK_TIMEOUT)
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    for method in PaymentMethod.objects.filter(customer=locked, status=PaymentMethod.Status.ACTIVE):
        _mark_detached(method)
    Customer.objects.filter(pk=locked.pk).update(stripe_customer_id=None)
