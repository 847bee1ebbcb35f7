from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.queue import queue_metrics_register
        from webhooks import mirror  # noqa: F401  (its outbox handlers)
        from webhooks.services import WEBHOOKS

        queue_metrics_register(WEBHOOKS)
