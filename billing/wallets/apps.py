from django.apps import AppConfig


class WalletsConfig(AppConfig):
    name = "billing.wallets"
    label = "wallets"
    verbose_name = "Wallets (prepaid credits)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing.wallets import signals, sync  # noqa: F401
