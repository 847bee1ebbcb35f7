from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "billing.payments"
    label = "payments"
    verbose_name = "Payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing.invoicing import events as invoicing_events
        from billing.payments import collection, refunds
        from customers import events as customer_events

        invoicing_events.payment_requested.subscribe(collection.collection_plan)
        invoicing_events.payments_requested.subscribe(collection.collection_plan_many)
        invoicing_events.payment_in_flight.subscribe(collection.collection_in_flight)
        invoicing_events.refund_requested.subscribe(refunds.refund_plan)
        customer_events.default_payment_method_set.subscribe(
            collection.invoices_resume_for_customer
        )
        customer_events.open_invoices_count.subscribe(collection.open_invoices_count)
