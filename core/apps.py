from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Platform plumbing shared by every app: API keys, idempotency, logging, health, metrics.

    Kept out of the four domain apps so none of them owns cross-cutting concerns.
    """

    name = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core import celery_context, observability  # noqa: F401

        observability.init_sentry()
