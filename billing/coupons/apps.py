from django.apps import AppConfig


class CouponsConfig(AppConfig):
    name = "billing.coupons"
    label = "coupons"
    verbose_name = "Coupons"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing.coupons import signals, sync  # noqa: F401
