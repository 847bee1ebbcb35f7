"""The only module that talks to Stripe (payments).

Pins the API version, sets a timeout on every call, sends an idempotency key with every
write, and turns the SDK's errors into ProviderError / ProviderUnavailable.
"""

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import stripe
from django.conf import settings

from billing.providers.base import CustomerData, ProviderError, ProviderUnavailable, RemoteObject

logger = logging.getLogger(__name__)
PROVIDER = "stripe"
T = TypeVar("T")
_configured_for: tuple | None = None


def _configure() -> str:
    """Apply the settings to the SDK (and so to dj-stripe, which uses the same module)."""
    global _configured_for
    wanted = (settings.STRIPE_API_BASE, settings.STRIPE_TIMEOUT_SECONDS)
    if _configured_for != wanted:
        stripe.api_base = settings.STRIPE_API_BASE
        stripe.api_version = settings.STRIPE_API_VERSION
        stripe.default_http_client = stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_SECONDS)
        # Retries of writes are safe: every write carries an idempotency key.
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
            raise ProviderError(PROVIDER, _message(exc), code=exc.code, http_status=status) from exc
        finally:
            logger.debug("stripe call", extra={"call": func.__name__})

    return wrapper


def _message(exc: "stripe.StripeError") -> str:
    # user_message/ message never hold card numbers; the raw body may, so it is not used.
    return (
        getattr(exc, "user_message", None)
        or str(getattr(exc, "_message", ""))
        or exc.__class__.__name__
    )


def _options(idempotency_key: str | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {"api_key": _configure()}
    if idempotency_key:
        options["idempotency_key"] = idempotency_key
    return options


def _customer_params(data: CustomerData) -> dict[str, Any]:
    address = {
        "line1": data.address_line1 or None,
        "city": data.city or None,
        "postal_code": data.zipcode or None,
        "state": data.state or None,
        "country": data.country or None,
    }
    params: dict[str, Any] = {
        "name": data.name or None,
        "email": data.email or None,
        "metadata": {"customer_id": data.id, "external_id": data.external_id},
    }
    if any(address.values()):
        params["address"] = {key: value for key, value in address.items() if value}
    return {key: value for key, value in params.items() if value is not None}


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


def mirror(remote: RemoteObject) -> None:
    """Keep dj-stripe's copy of a Stripe object, for staff and for reconciliation."""
    from djstripe.models import Customer as StripeCustomer

    _ensure_djstripe_account()
    models = {"customer": StripeCustomer}
    model = models[remote.raw.get("object", "customer")]
    model.sync_from_stripe_data(remote.raw, api_key=_configure())


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
