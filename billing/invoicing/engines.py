"""The billing engine is a setting (`BILLING_ENGINE`), not an `if` in every function.

`local` rates usage and issues invoices here. `lago` makes Lago the engine of record: it
issues the invoices, we mirror them (billing/lago_invoices.py) and collect them through
Stripe the same way.
"""

from datetime import datetime
from typing import Protocol

from django.conf import settings

from billing.invoicing import lago_mirror as lago_invoices
from billing.invoicing import services as invoices
from billing.invoicing.models import Invoice
from subscriptions.models import Subscription
from subscriptions.services import subscription_as_of


class Engine(Protocol):
    def invoice_generate(
        self, *, subscription: Subscription, start: datetime | None, end: datetime | None
    ) -> tuple[Invoice, bool]: ...

    def invoice_finalize(self, *, invoice: Invoice) -> Invoice: ...

    def invoice_void(self, *, invoice: Invoice) -> Invoice: ...


class LocalEngine:
    def invoice_generate(
        self, *, subscription: Subscription, start: datetime | None, end: datetime | None
    ) -> tuple[Invoice, bool]:
        # A period that ended a moment ago is closed now, not when the beat job next runs.
        subscription = subscription_as_of(subscription=subscription)
        period = invoices.closed_period(subscription=subscription, start=start, end=end)
        return invoices.invoice_generate_for_period(period=period)

    def invoice_finalize(self, *, invoice: Invoice) -> Invoice:
        return invoices.invoice_finalize(invoice=invoice)

    def invoice_void(self, *, invoice: Invoice) -> Invoice:
        return invoices.invoice_void(invoice=invoice)


class LagoEngine:
    def invoice_generate(
        self, *, subscription: Subscription, start: datetime | None, end: datetime | None
    ) -> tuple[Invoice, bool]:
        return lago_invoices.lago_invoice_generate(subscription=subscription, start=start, end=end)

    def invoice_finalize(self, *, invoice: Invoice) -> Invoice:
        return lago_invoices.lago_invoice_finalize(invoice=invoice)

    def invoice_void(self, *, invoice: Invoice) -> Invoice:
        return lago_invoices.lago_invoice_void(invoice=invoice)


def engine() -> Engine:
    return LagoEngine() if settings.BILLING_ENGINE == "lago" else LocalEngine()


def engine_of(invoice: Invoice) -> Engine:
    """The engine that issued this invoice: a local invoice stays ours to finalize or void
    after a switch to Lago, and a Lago invoice stays Lago's."""
    return LagoEngine() if invoice.engine == Invoice.Engine.LAGO else LocalEngine()


def invoice_finalize(*, invoice: Invoice) -> Invoice:
    return engine_of(invoice).invoice_finalize(invoice=invoice)


def invoice_void(*, invoice: Invoice) -> Invoice:
    return engine_of(invoice).invoice_void(invoice=invoice)
