"""Views that exist only for benchmarks; routed by bench.urls, never by config.urls."""

import json

from django.db import connection
from django.http import HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from customers.models import Customer

# The table of bare_webhook_receive: no model, created (and emptied) by bench.webhooks.
BARE_WEBHOOK_TABLE = "bench_raw_webhook"
BARE_WEBHOOK_TABLE_DDL = f"""
CREATE TABLE IF NOT EXISTS {BARE_WEBHOOK_TABLE} (
    id bigserial PRIMARY KEY,
    body text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
)
"""

CUSTOMER_FIELDS = (
    "external_id",
    "name",
    "email",
    "currency",
    "country",
    "address_line1",
    "city",
    "zipcode",
    "state",
    "tax_id",
    "metadata",
)


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
