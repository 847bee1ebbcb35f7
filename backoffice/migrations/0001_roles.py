"""The staff roles' groups (backoffice/roles.py holds what each may do)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from backoffice.roles import ROLES, roles_sync


def forward(apps, schema_editor):
    # Permissions are made in post_migrate, after every migration: those of the models
    # migrated so far are made now; the app's post_migrate sync adds the rest.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_sync(
        group_model=apps.get_model("auth", "Group"),
        permission_model=apps.get_model("auth", "Permission"),
    )


def backward(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forward, backward)]
