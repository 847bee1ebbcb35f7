from django.apps import AppConfig
from django.db.models.signals import post_migrate


class BackofficeConfig(AppConfig):
    """The back office: roles, the dashboard, and the staff pages that read across apps."""

    name = "backoffice"
    label = "backoffice"
    verbose_name = "Back office"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.models import Group, Permission

        from backoffice import third_party_admin
        from backoffice.roles import roles_sync

        def _sync(**kwargs) -> None:
            roles_sync(group_model=Group, permission_model=Permission)

        # After every migrate: Django creates new models' permissions in post_migrate,
        # after the migrations ran, so roles catch up here.
        # weak=False: `_sync` is a closure nothing else holds.
        post_migrate.connect(_sync, sender=self, weak=False, dispatch_uid="backoffice_roles_sync")
        third_party_admin.read_only()
