import logging

from django.conf import settings

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
        # Customer names, emails and addresses must never leave for a third party.
        send_default_pii=False,
        traces_sample_rate=0.0,
    )
