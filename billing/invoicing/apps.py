from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    name = "billing.invoicing"
    label = "invoicing"
    verbose_name = "Invoicing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # lago_mirror and metrics register an outbox handler and gauges on import.
        from billing.invoicing import (  # noqa: F401
            events,
            lago_corrections,
            lago_mirror,
            metrics,
            selectors,
            signals,
            top_ups,
        )
        from customers import events as customer_events

        events.credits_consumed.subscribe(top_ups.top_ups_below_threshold)
        customer_events.currency_in_use.subscribe(selectors.customer_has_invoices)
