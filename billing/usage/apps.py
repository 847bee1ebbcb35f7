from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "billing.usage"
    label = "usage"
    verbose_name = "Usage"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing.usage.forwarding import FORWARDING
        from core.queue import queue_metrics_register

        queue_metrics_register(FORWARDING)
