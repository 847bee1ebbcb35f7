from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    name = "billing.invoicing"
    label = "invoicing"
    verbose_name = "Invoicing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # lago_mirror and metrics register an outbox handler and gauges on import.
        from billing.invoicing import lago_mirror, metrics, selectors  # noqa: F401
        from customers import events as customer_events

        customer_events.currency_in_use.subscribe(selectors.customer_has_invoices)
