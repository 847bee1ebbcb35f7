"""The only module that talks to Stripe (payments).

Pins the API version, sets a timeout on every call, sends an idempotency key with every
write, and turns the SDK's errors into ProviderError / ProviderUnavailable.
"""

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar

import stripe
from django.conf import settings

from billing.providers.base import (
    CustomerData,
    PaymentMethodData,
    PaymentResult,
    ProviderError,
    ProviderUnavailable,
    RemoteObject,
    SetupIntentData,
    SignedWebhook,
    StripeCharge,
    StripeEvent,
    WebhookPayloadError,
    WebhookSignatureError,
)
from billing.providers.inline import is_inline

logger = logging.getLogger(__name__)
PROVIDER = "stripe"
T = TypeVar("T")
_configured_for: tuple | None = None


class _HttpClient(stripe.RequestsClient):
    """The SDK's client, but inside an HTTP request (billing.providers.inline) with
    STRIPE_REQUEST_TIMEOUT_SECONDS and no retries. Per call, through a context variable:
    the client is shared by every thread of the process."""

    @property
    def _timeout(self):
        return settings.STRIPE_REQUEST_TIMEOUT_SECONDS if is_inline() else self._base_timeout

    @_timeout.setter
    def _timeout(self, value) -> None:
        self._base_timeout = value

    def request_with_retries(
        self, method, url, headers, post_data=None, max_network_retries=None, **kwargs
    ):
        if is_inline():
            max_network_retries = 0
        return super().request_with_retries(
            method, url, headers, post_data, max_network_retries, **kwargs
        )


def _configure() -> str:
    """Apply the settings to the SDK (and so to dj-stripe, which uses the same module)."""
    global _configured_for
    wanted = (settings.STRIPE_API_BASE, settings.STRIPE_TIMEOUT_SECONDS)
    if _configured_for != wanted:
        stripe.api_base = settings.STRIPE_API_BASE
        stripe.api_version = settings.STRIPE_API_VERSION
        stripe.default_http_client = _HttpClient(timeout=settings.STRIPE_TIMEOUT_SECONDS)
        # Retries of writes are safe: every write carries an idempotency key. Not inside
        # an HTTP request: there _HttpClient makes no retry.
        stripe.max_network_retries = 2
        stripe.enable_telemetry = False
        _configured_for = wanted
    if not settings.STRIPE_SECRET_KEY:
        raise ProviderError(PROVIDER, "STRIPE_SECRET_KEY is not set", code="not_configured")
    return settings.STRIPE_SECRET_KEY


def _translate_errors(func: Callable[..., T]) -> Callable[..., T]:
    @wraps(func)
    def wrapper(*args, **kwargs) -> T:
        try:
            return func(*args, **kwargs)
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise ProviderUnavailable(PROVIDER, _message(exc), code=exc.code) from exc
        except stripe.StripeError as exc:
            status = getattr(exc, "http_status", None)
            if status is None or status >= 500:
                raise ProviderUnavailable(
                    PROVIDER, _message(exc), code=exc.code, http_status=status
                ) from exc
            # Stripe answers a missing object with 404 `resource_missing`; keep that code
            # even where it is omitted (the emulator omits it).
            code = exc.code or ("resource_missing" if status == 404 else None)
            raise ProviderError(
                PROVIDER,
                _message(exc),
                code=code,
                http_status=status,
                user_message=exc.user_message if isinstance(exc, stripe.CardError) else None,
            ) from exc
        finally:
            logger.debug("stripe call", extra={"call": func.__name__})

    return wrapper


def _message(exc: "stripe.StripeError") -> str:
    """What we keep of a Stripe error. Stripe's prose can echo what we sent (an email, an
    address), so only a card refusal's customer-facing text is kept, else codes."""
    if isinstance(exc, stripe.CardError) and exc.user_message:
        return exc.user_message
    parts = [exc.__class__.__name__]
    if exc.code:
        parts.append(f"code={exc.code}")
    param = getattr(exc, "param", None)
    if param:
        parts.append(f"param={param}")
    if getattr(exc, "http_status", None):
        parts.append(f"http={exc.http_status}")
    return " ".join(parts)


def _options(idempotency_key: str | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {"api_key": _configure()}
    if idempotency_key:
        options["idempotency_key"] = idempotency_key
    return options


def _customer_params(data: CustomerData) -> dict[str, Any]:
    # Empty strings, not omissions: a field cleared here must be cleared at Stripe too.
    return {
        "name": data.name,
        "email": data.email,
        "address": {
            "line1": data.address_line1,
            "city": data.city,
            "postal_code": data.zipcode,
            "state": data.state,
            "country": data.country,
        },
        "metadata": {"customer_id": data.id, "external_id": data.external_id},
    }


@_translate_errors
def customer_create(*, data: CustomerData) -> RemoteObject:
    """Create the Stripe customer, holding only our ids; `customer_update` fills it in.

    The idempotency key is the local id and the parameters never change, so a retry of
    this call, even after the customer was edited, returns the same Stripe customer.
    """
    customer = stripe.Customer.create(
        metadata={"customer_id": data.id, "external_id": data.external_id},
        **_options(idempotency_key=f"customer:{data.id}:create"),
    )
    logger.info("stripe customer created", extra={"stripe_id": customer.id})
    return RemoteObject(PROVIDER, customer.id, customer.to_dict())


@_translate_errors
def customer_update(*, stripe_id: str, data: CustomerData, version: str) -> RemoteObject:
    customer = stripe.Customer.modify(
        stripe_id,
        **_customer_params(data),
        **_options(idempotency_key=f"customer:{data.id}:update:{version}"),
    )
    return RemoteObject(PROVIDER, customer.id, customer.to_dict())


# --- The dj-stripe mirror holds no personal data ----------------------------------------
# Stripe keeps a customer's name, e-mail, phone and addresses (it needs them for receipts,
# tax and card checks); our own columns keep them too, the address encrypted. dj-stripe's
# tables would be a third copy, in clear (its `stripe_data` is the whole object), so every
# row it writes for these models is scrubbed before it is saved, whichever way dj-stripe
# got the object (our mirror, or a related object it fetched itself). What is left is
# what staff and reconciliation use: ids, amounts, statuses, the card's brand, last4,
# expiry and country, and an address's country.
SCRUBBED_MODELS = (
    "Customer",
    "PaymentMethod",
    "Charge",
    "PaymentIntent",
    "SetupIntent",
    "Card",
    "Source",
    "BankAccount",
)
_PERSONAL_KEYS = frozenset(
    {
        "name",
        "email",
        "phone",
        "receipt_email",
        "tax_id",
        "tax_ids",
        # A legacy card's own address fields; Sources' verified owner details.
        "address_line1",
        "address_line2",
        "address_city",
        "address_state",
        "address_zip",
        "verified_address",
        "verified_email",
        "verified_name",
        "verified_phone",
        # A link to the receipt (which shows the name and e-mail) and the secret with
        # which a browser confirms an intent: no use to staff, a risk in a copy.
        "receipt_url",
        "client_secret",
    }
)
_ADDRESS_KEYS = frozenset({"address", "billing_address", "shipping_address"})


def scrub_personal_data(value: Any) -> Any:
    """A Stripe object (or any part of one) without personal data: the keys above are
    dropped at any depth and an address keeps only its country."""
    if isinstance(value, list):
        return [scrub_personal_data(item) for item in value]
    if not isinstance(value, dict):
        return value
    scrubbed: dict[str, Any] = {}
    for key, item in value.items():
        if key in _PERSONAL_KEYS:
            continue
        if key in _ADDRESS_KEYS and isinstance(item, dict):
            scrubbed[key] = {"country": item.get("country")}
        else:
            scrubbed[key] = scrub_personal_data(item)
    return scrubbed


def _scrub_mirror_row(sender: type, instance: Any, **kwargs: Any) -> None:
    instance.stripe_data = scrub_personal_data(instance.stripe_data)
    # The one personal column of these tables outside stripe_data (djstripe_customer).
    if hasattr(instance, "email"):
        instance.email = ""


def mirror_scrubbing_connect() -> None:
    """Scrub every row dj-stripe saves for the models above (called once, at start-up)."""
    from django.db.models.signals import pre_save
    from djstripe import models as djstripe_models

    for name in SCRUBBED_MODELS:
        pre_save.connect(
            _scrub_mirror_row,
            sender=getattr(djstripe_models, name),
            dispatch_uid=f"djstripe_{name}_scrub_personal_data",
        )


def mirror(remote: RemoteObject) -> None:
    """Keep dj-stripe's copy of a Stripe object, for staff and for reconciliation."""
    mirror_data(remote.raw)


def _ensure_djstripe_account() -> None:
    """dj-stripe finds the owner Account of our key by calling GET /v1/account. With
    STRIPE_ACCOUNT_ID set (the emulator has no such endpoint) the row is made locally."""
    from djstripe.models import Account, APIKey

    api_key = _configure()
    if not settings.STRIPE_ACCOUNT_ID:
        Account.get_or_retrieve_for_api_key(api_key)
        return
    key, _ = APIKey.objects.get_or_create_by_api_key(api_key)
    if key.djstripe_owner_account_id:
        return
    account, _ = Account.objects.get_or_create(
        id=settings.STRIPE_ACCOUNT_ID,
        defaults={
            "livemode": settings.STRIPE_LIVE_MODE,
            "stripe_data": {"id": settings.STRIPE_ACCOUNT_ID, "object": "account"},
        },
    )
    key.djstripe_owner_account = account
    key.save(update_fields=["djstripe_owner_account"])


SIGNATURE_TOLERANCE_SECONDS = 300


def verify_webhook(*, payload: bytes, signature_header: str) -> SignedWebhook:
    """Check `Stripe-Signature` against every configured secret (several during rotation)
    and return the event. Raises WebhookSignatureError; never trusts an unsigned body."""
    if not settings.STRIPE_WEBHOOK_SECRET:
        raise WebhookSignatureError("STRIPE_WEBHOOK_SECRET is not set")
    if not signature_header:
        raise WebhookSignatureError("missing Stripe-Signature header")
    text = payload.decode("utf-8", errors="replace")
    for secret in settings.STRIPE_WEBHOOK_SECRET:
        try:
            stripe.WebhookSignature.verify_header(
                text, signature_header, secret, tolerance=SIGNATURE_TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError as exc:
            reason = str(getattr(exc, "_message", "")) or "signature mismatch"
            continue
        try:
            event = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            raise WebhookPayloadError("signed body is not JSON") from exc
        event_id = event.get("id") if isinstance(event, dict) else None
        event_type = event.get("type") if isinstance(event, dict) else None
        if not (
            isinstance(event_id, str) and event_id and isinstance(event_type, str) and event_type
        ):
            raise WebhookPayloadError("signed body is not a Stripe event")
        return SignedWebhook(event_id=event_id, event_type=event_type, payload=event)
    raise WebhookSignatureError(reason)


def parse_event(payload: Any) -> StripeEvent:
    """A stored event as the handlers need it. Raises ProviderError (`malformed`) when it
    is not an event about a Stripe object."""
    data = payload.get("data") if isinstance(payload, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict) or not obj.get("id"):
        raise ProviderError(PROVIDER, "malformed event: no data.object", code="malformed")
    event_id, event_type = payload.get("id"), payload.get("type")
    if not (isinstance(event_id, str) and isinstance(event_type, str)):
        raise ProviderError(PROVIDER, "malformed event: no id or type", code="malformed")
    object_type = str(obj.get("object") or "")
    created = payload.get("created")
    return StripeEvent(
        id=event_id,
        type=event_type,
        created=_moment(created),
        object_type=object_type,
        object_id=str(obj["id"]),
        customer_id=_id_of(obj.get("id") if object_type == "customer" else obj.get("customer")),
        data=obj,
        payment_intent=payment_result(obj) if object_type == "payment_intent" else None,
        charge=_charge(obj) if object_type == "charge" else None,
    )


def _moment(value: Any) -> datetime | None:
    """A Unix time as Stripe sends it; None when it is not one (a signed 10**20 is
    out of datetime's range: unreadable, not a server error)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _id_of(value: Any) -> str | None:
    """The id of a reference, expanded (an object) or not (its id)."""
    if isinstance(value, dict):
        value = value.get("id")
    return str(value) if value else None


def _charge(obj: dict[str, Any]) -> StripeCharge:
    return StripeCharge(
        id=str(obj.get("id") or ""),
        payment_intent_id=_id_of(obj.get("payment_intent")),
        amount=int(obj.get("amount") or 0),
        amount_refunded=int(obj.get("amount_refunded") or 0),
        refunded=bool(obj.get("refunded")),
    )


@_translate_errors
def _retrieve(*, object_type: str, object_id: str) -> dict[str, Any]:
    resources: dict[str, Any] = {
        "customer": stripe.Customer,
        "payment_method": stripe.PaymentMethod,
        "payment_intent": stripe.PaymentIntent,
        "setup_intent": stripe.SetupIntent,
        "charge": stripe.Charge,
    }
    return resources[object_type].retrieve(object_id, **_options()).to_dict()


def mirror_data(data: dict[str, Any]) -> None:
    """Mirror a Stripe object given as a dict (a webhook's `data.object`) with dj-stripe."""
    from djstripe import models as djstripe_models

    _ensure_djstripe_account()
    models = {
        "customer": djstripe_models.Customer,
        "payment_method": djstripe_models.PaymentMethod,
        "payment_intent": djstripe_models.PaymentIntent,
        "setup_intent": djstripe_models.SetupIntent,
        "charge": djstripe_models.Charge,
    }
    model = models.get(data.get("object", ""))
    if model is None:
        raise ProviderError(PROVIDER, f"no mirror for Stripe {data.get('object')!r} objects")
    try:
        model.sync_from_stripe_data(data, api_key=_configure())
    except stripe.StripeError as exc:
        raise ProviderUnavailable(PROVIDER, _message(exc), code=exc.code) from exc


# --- Payment methods -------------------------------------------------------------------
def _payment_method_data(obj: dict[str, Any]) -> PaymentMethodData:
    card = obj.get("card") or {}
    details = obj.get("billing_details") or {}
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return PaymentMethodData(
        id=obj["id"],
        customer=customer or None,
        type=obj.get("type") or "card",
        brand=str(card.get("brand") or "")[:32],
        last4=str(card.get("last4") or "")[:4],
        exp_month=_int_or_none(card.get("exp_month")),
        exp_year=_int_or_none(card.get("exp_year")),
        fingerprint=str(card.get("fingerprint") or "")[:64],
        billing_country=str(
            ((details.get("address") or {}).get("country")) or card.get("country") or ""
        )[:2],
    )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@_translate_errors
def setup_intent_create(*, stripe_customer_id: str, idempotency_key: str) -> SetupIntentData:
    intent = stripe.SetupIntent.create(
        customer=stripe_customer_id,
        payment_method_types=["card"],
        usage="off_session",
        **_options(idempotency_key=idempotency_key),
    )
    return SetupIntentData(id=intent.id, client_secret=intent.client_secret or "")


@_translate_errors
def payment_method_retrieve(*, payment_method_id: str) -> PaymentMethodData:
    return _payment_method_data(
        stripe.PaymentMethod.retrieve(payment_method_id, **_options()).to_dict()
    )


@_translate_errors
def payment_method_attach(
    *, payment_method_id: str, stripe_customer_id: str, idempotency_key: str
) -> PaymentMethodData:
    attached = stripe.PaymentMethod.attach(
        payment_method_id, customer=stripe_customer_id, **_options(idempotency_key=idempotency_key)
    )
    return _payment_method_data(attached.to_dict())


@_translate_errors
def payment_method_detach(*, payment_method_id: str, idempotency_key: str) -> PaymentMethodData:
    detached = stripe.PaymentMethod.detach(
        payment_method_id, **_options(idempotency_key=idempotency_key)
    )
    return _payment_method_data(detached.to_dict())


@_translate_errors
def customer_set_default_payment_method(
    *, stripe_customer_id: str, payment_method_id: str | None, idempotency_key: str
) -> str | None:
    """Set (or clear, with None) the customer's invoice default; returns what Stripe holds."""
    customer = stripe.Customer.modify(
        stripe_customer_id,
        invoice_settings={"default_payment_method": payment_method_id or ""},
        **_options(idempotency_key=idempotency_key),
    )
    return _default_payment_method_of(customer.to_dict())


@_translate_errors
def customer_default_payment_method(*, stripe_customer_id: str) -> str | None:
    """The customer's invoice default as Stripe holds it now."""
    return _default_payment_method_of(
        stripe.Customer.retrieve(stripe_customer_id, **_options()).to_dict()
    )


def _default_payment_method_of(customer: dict[str, Any]) -> str | None:
    default = (customer.get("invoice_settings") or {}).get("default_payment_method")
    if isinstance(default, dict):
        default = default.get("id")
    return default or None


def mirror_current(*, object_type: str, object_id: str) -> None:
    """Mirror an object as Stripe holds it now (where events cannot be ordered, or our own
    API changes the object too). A deleted object keeps its last mirrored state."""
    data = _retrieve(object_type=object_type, object_id=object_id)
    if not data.get("deleted"):
        mirror_data(data)


# --- Payments ---------------------------------------------------------------------------
def payment_result(intent: dict[str, Any]) -> PaymentResult:
    error = intent.get("last_payment_error") or {}
    return PaymentResult(
        id=intent["id"],
        status=intent.get("status") or "",
        amount=int(intent.get("amount") or 0),
        currency=str(intent.get("currency") or "").upper(),
        metadata=dict(intent.get("metadata") or {}),
        failure_code=str(error.get("decline_code") or error.get("code") or "")[:64],
        # Stripe's customer-facing text for a refusal; never the card details.
        failure_message=str(error.get("message") or "")[:500],
    )


@_translate_errors
def payment_intent_create(
    *,
    stripe_customer_id: str,
    payment_method_id: str,
    amount: int,
    currency: str,
    idempotency_key: str,
    metadata: dict[str, str],
) -> PaymentResult:
    """Charge a saved card off-session, confirmed at once. A refusal is a result (with
    the PaymentIntent Stripe created for it), not an exception."""
    try:
        intent = stripe.PaymentIntent.create(
            customer=stripe_customer_id,
            payment_method=payment_method_id,
            amount=amount,
            currency=currency.lower(),
            off_session=True,
            confirm=True,
            payment_method_types=["card"],
            metadata=metadata,
            **_options(idempotency_key=idempotency_key),
        )
    except stripe.CardError as exc:
        error = exc.error
        declined = getattr(error, "payment_intent", None) if error is not None else None
        if declined is None:
            raise
        result = payment_result(
            declined.to_dict() if hasattr(declined, "to_dict") else dict(declined)
        )
        if result.status == "succeeded":  # pragma: no cover - Stripe never does this
            return result
        code = getattr(error, "decline_code", None) or exc.code or "card_declined"
        return PaymentResult(
            id=result.id,
            status=result.status or "requires_payment_method",
            amount=result.amount or amount,
            currency=result.currency or currency.upper(),
            metadata=result.metadata or metadata,
            failure_code=str(code)[:64],
            failure_message=_message(exc)[:500],
        )
    return payment_result(intent.to_dict())


@_translate_errors
def payment_intent_retrieve(*, payment_intent_id: str) -> PaymentResult:
    return payment_result(stripe.PaymentIntent.retrieve(payment_intent_id, **_options()).to_dict())


@_translate_errors
def payment_intent_cancel(*, payment_intent_id: str) -> PaymentResult:
    return payment_result(
        stripe.PaymentIntent.cancel(
            payment_intent_id, **_options(idempotency_key=f"{payment_intent_id}:cancel")
        ).to_dict()
    )


@_translate_errors
def payment_intent_find(
    *, stripe_customer_id: str, metadata_key: str, metadata_value: str
) -> PaymentResult | None:
    """The customer's PaymentIntent carrying `metadata[key] == value`, if Stripe holds one.
    Lists (strongly consistent), not search (which lags), newest first."""
    page = stripe.PaymentIntent.list(customer=stripe_customer_id, limit=100, **_options())
    for intent in page.auto_paging_iter():
        data = intent.to_dict()
        if (data.get("metadata") or {}).get(metadata_key) == metadata_value:
            return payment_result(data)
    return None
