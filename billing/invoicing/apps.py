from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    name = "billing.invoicing"
    label = "invoicing"
    verbose_name = "Invoicing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing.invoicing import lago_mirror, metrics  # noqa: F401  (outbox handler, gauges)
