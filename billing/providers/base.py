"""Provider-neutral types: what the rest of the service knows of Stripe and Lago."""

from dataclasses import dataclass, field
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
    provider: str
    id: str
    raw: dict[str, Any]


class WebhookSignatureError(Exception):
    """A webhook whose signature is missing, wrong or stale: nothing in it may be trusted."""


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
