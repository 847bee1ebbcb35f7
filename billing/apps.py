from django.apps import AppConfig


class BillingConfig(AppConfig):
    """`billing` is a namespace of apps (sync, usage, invoicing, payments). This app holds
    no models: only the migration history of the models before they moved into those apps
    (state-only moves, same tables), so databases created before the split migrate on."""

    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"
