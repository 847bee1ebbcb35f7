"""Views that exist only for benchmarks; routed by bench.urls, never by config.urls."""

import json

from django.http import HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from customers.models import Customer

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
