import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:  # sentry_sdk is imported only when Sentry is on
    from sentry_sdk.types import Event, Hint

logger = logging.getLogger(__name__)


def init_sentry() -> None:
    """Error reporting is optional: on only when SENTRY_DSN is set."""
    if not settings.SENTRY_DSN:
        return
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=settings.SENTRY_DSN,
        environment=settings.SENTRY_ENVIRONMENT or None,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        # Customer names, emails, addresses and tax ids must never leave for a third
        # party: no PII, no request bodies, no local variables, and a last scrub.
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=False,
        before_send=scrub_event,
        traces_sample_rate=0.0,
    )


def scrub_event(event: "Event", hint: "Hint") -> "Event":
    """Keep what locates a bug (stack, route, request id); drop what may hold personal data."""
    request = event.get("request") or {}
    for key in ("data", "cookies", "query_string", "env"):
        request.pop(key, None)
    headers = request.get("headers")
    request["headers"] = {
        name: value
        for name, value in (headers.items() if isinstance(headers, Mapping) else ())
        if name.lower() in ("content-type", "user-agent", "x-request-id")
    }
    event.pop("user", None)
    breadcrumbs = event.get("breadcrumbs")
    if isinstance(breadcrumbs, dict):  # not a truncation marker (AnnotatedValue)
        for crumb in breadcrumbs.get("values", []):
            crumb.pop("data", None)
    return event
