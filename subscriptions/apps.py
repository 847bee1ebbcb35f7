from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from customers import events as customer_events
        from subscriptions import selectors, signals, sync  # noqa: F401

        customer_events.currency_in_use.subscribe(selectors.customer_has_subscriptions)
