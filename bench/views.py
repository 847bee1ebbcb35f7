"""Views that exist only for benchmarks; routed by bench.urls, never by config.urls."""

import hashlib
import json

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.providers import provider_enabled
from billing.usage.models import UsageRecord, UsageTransaction
from customers.models import Customer
from customers.services import UPDATABLE_FIELDS
from subscriptions.models import BillableMetric, Subscription

# The table of bare_webhook_receive: no model, created (and emptied) by bench.webhooks.
BARE_WEBHOOK_TABLE = "bench_raw_webhook"
BARE_WEBHOOK_TABLE_DDL = f"""
CREATE TABLE IF NOT EXISTS {BARE_WEBHOOK_TABLE} (
    id bigserial PRIMARY KEY,
    body text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
)
"""

CUSTOMER_FIELDS = ("external_id", *UPDATABLE_FIELDS)


@csrf_exempt
@require_POST
def bare_customer_create(request):
    """The baseline: the same INSERT as POST /api/v1/customers/, with nothing around it.

    No DRF, no authentication, no idempotency, no validation, no service. The project's
    middleware still runs (it is global), and so does Customer's post_save receiver.
    """
    try:
        data = json.loads(request.body)
    except ValueError:
        return HttpResponseBadRequest("invalid JSON")
    if not isinstance(data, dict):
        return HttpResponseBadRequest("expected a JSON object")
    customer = Customer(**{name: data[name] for name in CUSTOMER_FIELDS if name in data})
    customer.save()
    return JsonResponse({"id": str(customer.pk), "external_id": customer.external_id}, status=201)


@csrf_exempt
@require_POST
def bare_webhook_receive(request):
    """The baseline of POST /webhooks/stripe/: one INSERT of the raw body, then the same
    acknowledgement.

    No signature check, no JSON parsing, no encryption, no ORM, no Celery publish. The
    project's middleware still runs (it is global).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {BARE_WEBHOOK_TABLE} (body) VALUES (%s)", [request.body.decode()]
        )
    return JsonResponse({"received": True, "duplicate": False})


# One round trip: the dedupe row and the record, the ids resolved by their unique indexes,
# the value read from the metric's field (NULL for count and unique_count metrics).
BARE_USAGE_SQL = f"""
WITH claimed AS (
    INSERT INTO {UsageTransaction._meta.db_table}
        (transaction_id, content_hash, "timestamp", created_at)
    VALUES (%(tid)s, %(hash)s, coalesce(%(ts)s::timestamptz, now()), now())
)
INSERT INTO {UsageRecord._meta.db_table}
    (transaction_id, subscription_id, metric_id, "timestamp", properties, value,
     unique_value, received_at, lago_status)
SELECT %(tid)s, s.id, m.id, coalesce(%(ts)s::timestamptz, now()), %(properties)s::jsonb,
       CASE WHEN m.aggregation IN ('sum', 'max', 'latest')
            THEN (%(properties)s::jsonb ->> m.field_name)::numeric END,
       NULL, now(), %(lago)s
FROM {Subscription._meta.db_table} s, {BillableMetric._meta.db_table} m
WHERE s.external_id = %(subscription)s AND m.code = %(metric)s
RETURNING id
"""


@csrf_exempt
@require_POST
def bare_usage_record(request):
    """The baseline of POST /api/v1/usage/: the same two rows (billing_usagetransaction and
    billing_usagerecord) written in one transaction by one statement, from the same body.

    No DRF, no authentication, no serializer, no checks of status, timestamp or values,
    no duplicate handling (a repeated transaction_id is a 500). The content hash is the
    body's. The project's middleware still runs (it is global).
    """
    try:
        event = json.loads(request.body)
    except ValueError:
        return HttpResponseBadRequest("invalid JSON")
    lago = (
        UsageRecord.LagoStatus.PENDING
        if settings.BILLING_ENGINE == "lago" and provider_enabled("lago")
        else UsageRecord.LagoStatus.DISABLED
    )
    params = {
        "tid": event["transaction_id"],
        "hash": hashlib.sha256(request.body).hexdigest(),
        "ts": event.get("timestamp"),
        "properties": json.dumps(event.get("properties") or {}),
        "lago": lago,
        "subscription": event["subscription"],
        "metric": event["metric"],
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(BARE_USAGE_SQL, params)
        row = cursor.fetchone()
        if row is None:
            transaction.set_rollback(True)
            return JsonResponse({"detail": "unknown subscription or metric"}, status=422)
    return JsonResponse({"id": row[0], "transaction_id": params["tid"]}, status=201)
