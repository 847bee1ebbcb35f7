from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "billing.sync"
    label = "sync"
    verbose_name = "Provider sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing.sync import metrics  # noqa: F401  (its gauges)
