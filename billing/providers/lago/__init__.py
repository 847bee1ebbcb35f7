"""The only code that talks to Lago's HTTP API (the usage-based billing engine).

Our dataclasses in (`billing.providers.base`), our dataclasses out: Lago's payload shapes
are built and read in this package and nowhere else. One module per concept, all through
`client.request` (timeouts, the request id forwarded, errors turned into ProviderError /
ProviderUnavailable with Lago's code kept). Callers use `from billing.providers import lago`
and the names below.
"""

from billing.providers.base import UsageEventData
from billing.providers.lago.catalog import metric_upsert, plan_upsert
from billing.providers.lago.client import as_lago_time
from billing.providers.lago.customers import customer_upsert
from billing.providers.lago.events import BATCH_LIMIT, BatchOutcome, events_batch
from billing.providers.lago.invoices import (
    invoice_finalize,
    invoice_get,
    invoice_payment_status_update,
    invoice_preview,
    invoice_void,
    invoices_page,
)
from billing.providers.lago.subscriptions import (
    subscription_create,
    subscription_get,
    subscription_terminate,
    subscription_update,
)
from billing.providers.lago.webhooks import parse_webhook, verify_webhook

__all__ = [
    "BATCH_LIMIT",
    "BatchOutcome",
    # Here too for the usage forwarder, which sends these (dicts still pass, meanwhile).
    "UsageEventData",
    "as_lago_time",
    "customer_upsert",
    "events_batch",
    "invoice_finalize",
    "invoice_get",
    "invoice_payment_status_update",
    "invoice_preview",
    "invoice_void",
    "invoices_page",
    "metric_upsert",
    "parse_webhook",
    "plan_upsert",
    "subscription_create",
    "subscription_get",
    "subscription_terminate",
    "subscription_update",
    "verify_webhook",
]
