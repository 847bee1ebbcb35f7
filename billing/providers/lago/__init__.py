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
from billing.providers.lago.corrections import (
    add_on_delete,
    add_on_upsert,
    applied_coupon_terminate,
    applied_coupons,
    coupon_apply,
    coupon_terminate,
    coupon_upsert,
    credit_note_create,
    credit_note_find,
    credit_note_void,
    invoice_one_off_create,
    one_off_invoices,
    wallet_create,
    wallet_credits_grant,
    wallet_find,
    wallet_terminate,
    wallet_transaction_find,
)
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
    "UsageEventData",
    "add_on_delete",
    "add_on_upsert",
    "applied_coupon_terminate",
    "applied_coupons",
    "as_lago_time",
    "coupon_apply",
    "coupon_terminate",
    "coupon_upsert",
    "credit_note_create",
    "credit_note_find",
    "credit_note_void",
    "customer_upsert",
    "events_batch",
    "invoice_finalize",
    "invoice_get",
    "invoice_one_off_create",
    "invoice_payment_status_update",
    "invoice_preview",
    "invoice_void",
    "invoices_page",
    "metric_upsert",
    "one_off_invoices",
    "parse_webhook",
    "plan_upsert",
    "subscription_create",
    "subscription_get",
    "subscription_terminate",
    "subscription_update",
    "verify_webhook",
    "wallet_create",
    "wallet_credits_grant",
    "wallet_find",
    "wallet_terminate",
    "wallet_transaction_find",
]
