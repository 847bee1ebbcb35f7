from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "billing.usage"
    label = "usage"
    verbose_name = "Usage"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing.usage import forwarding  # noqa: F401  (its outbox handler)
