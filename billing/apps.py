from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported for their outbox handlers.
        from billing import collection, lago_invoices, usage_forwarding  # noqa: F401
