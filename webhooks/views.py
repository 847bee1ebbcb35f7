"""Provider webhook receivers. The signature is the authentication: nothing is trusted
before it is verified, and the request does no provider call and no domain work."""

import logging

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.providers import lago, stripe
from billing.providers.base import SignedWebhook, WebhookSignatureError
from core.responses import error_response
from webhooks.services import webhook_event_receive

logger = logging.getLogger(__name__)


def _rejected(provider: str, error: WebhookSignatureError) -> JsonResponse:
    # The body is never logged: it is unauthenticated and may carry personal data.
    reason = str(error)
    logger.warning("webhook rejected", extra={"provider": provider, "reason": reason})
    return error_response(400, error.code, reason)


def _store(provider: str, signed: SignedWebhook, request) -> JsonResponse:
    _, created = webhook_event_receive(
        provider=provider,
        event_id=signed.event_id,
        event_type=signed.event_type,
        body=request.body.decode(),
        payload=signed.payload,
        headers=request.headers,
    )
    return JsonResponse({"received": True, "duplicate": not created})


@csrf_exempt
@require_POST
def stripe_webhook(request):
    try:
        signed = stripe.verify_webhook(
            payload=request.body, signature_header=request.headers.get("Stripe-Signature", "")
        )
    except WebhookSignatureError as exc:
        return _rejected("stripe", exc)
    return _store("stripe", signed, request)


@csrf_exempt
@require_POST
def lago_webhook(request):
    try:
        signed = lago.verify_webhook(payload=request.body, headers=request.headers)
    except WebhookSignatureError as exc:
        return _rejected("lago", exc)
    return _store("lago", signed, request)
