from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "billing.sync"
    label = "sync"
    verbose_name = "Provider sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing.providers import stripe
        from billing.sync import metrics  # noqa: F401  (its gauges)

        # The dj-stripe mirror, written by this app's outbox, stores no personal data.
        stripe.mirror_scrubbing_connect()
