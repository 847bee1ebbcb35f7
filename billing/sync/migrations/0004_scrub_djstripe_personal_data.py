"""Rows dj-stripe saved before the mirror was scrubbed lose their personal data too (the
scrub now runs before every save: billing.providers.stripe.mirror_scrubbing_connect)."""

from django.db import migrations

from billing.providers.stripe import SCRUBBED_MODELS, scrub_personal_data


def scrub_existing_rows(apps, schema_editor):
    for name in SCRUBBED_MODELS:
        model = apps.get_model("djstripe", name)
        has_email = any(field.name == "email" for field in model._meta.concrete_fields)
        for row in model.objects.only("pk", "stripe_data").iterator(chunk_size=500):
            changes = {"stripe_data": scrub_personal_data(row.stripe_data)}
            if has_email:
                changes["email"] = ""
            model.objects.filter(pk=row.pk).update(**changes)


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0003_alter_outboxmessage_options"),
        ("djstripe", "0003_2_11"),
    ]

    operations = [migrations.RunPython(scrub_existing_rows, migrations.RunPython.noop)]
