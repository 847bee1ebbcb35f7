from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Platform plumbing shared by every app: API keys, idempotency, logging, health, metrics.

    Kept out of the four domain apps so none of them owns cross-cutting concerns.
    """

    name = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from core import celery_context, observability  # noqa: F401
        from core.auth import forget_api_keys
        from core.models import ApiKey

        # A key saved or deleted in this process is read afresh by its next request.
        for signal in (post_save, post_delete):
            signal.connect(
                lambda **kwargs: forget_api_keys(),
                sender=ApiKey,
                weak=False,
                dispatch_uid=f"forget-api-keys-{signal is post_save}",
            )

        observability.init_sentry()
