"""The only code that talks to Lago's HTTP API (the usage-based billing engine).

One module per concept, all through `client.request` (timeouts, the request id forwarded,
errors turned into ProviderError / ProviderUnavailable with Lago's code kept). Callers use
`from billing.providers import lago` and the names below.
"""

from billing.providers.lago.catalog import metric_upsert, plan_upsert
from billing.providers.lago.customers import customer_upsert
from billing.providers.lago.events import BATCH_LIMIT, events_batch
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
from billing.providers.lago.webhooks import verify_webhook

__all__ = [
    "BATCH_LIMIT",
    "customer_upsert",
    "events_batch",
    "invoice_finalize",
    "invoice_get",
    "invoice_payment_status_update",
    "invoice_preview",
    "invoice_void",
    "invoices_page",
    "metric_upsert",
    "plan_upsert",
    "subscription_create",
    "subscription_get",
    "subscription_terminate",
    "subscription_update",
    "verify_webhook",
]
