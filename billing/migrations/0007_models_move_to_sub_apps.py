"""The billing app's models moved into the apps of their concept (sync, usage, invoicing,
payments). Their tables stay where they are, so only Django's state changes here; the new
apps' 0001 migrations took the same models over (and re-installed the audit triggers under
their new app's names). Content types follow, so permissions and admin history keep
pointing at the same models, and outbox rows name invoices by their new label."""

from django.db import migrations

MOVED = {
    "outboxmessage": "sync",
    "usagerecord": "usage",
    "usagetransaction": "usage",
    "invoicesequence": "invoicing",
    "invoice": "invoicing",
    "invoiceevent": "invoicing",
    "invoiceline": "invoicing",
    "paymentattempt": "payments",
}


def forwards(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model, app_label in MOVED.items():
        if not ContentType.objects.filter(app_label=app_label, model=model).exists():
            ContentType.objects.filter(app_label="billing", model=model).update(
                app_label=app_label
            )
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_outboxmessage SET object_type = 'invoicing.invoice' "
            "WHERE object_type = 'billing.invoice'"
        )


def backwards(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model, app_label in MOVED.items():
        if not ContentType.objects.filter(app_label="billing", model=model).exists():
            ContentType.objects.filter(app_label=app_label, model=model).update(
                app_label="billing"
            )
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_outboxmessage SET object_type = 'billing.invoice' "
            "WHERE object_type = 'invoicing.invoice'"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0006_invoice_immutability"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("invoicing", "0001_initial"),
        ("payments", "0001_initial"),
        ("sync", "0001_initial"),
        ("usage", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="InvoiceEvent"),
                migrations.DeleteModel(name="InvoiceLine"),
                migrations.DeleteModel(name="PaymentAttempt"),
                migrations.DeleteModel(name="Invoice"),
                migrations.DeleteModel(name="InvoiceSequence"),
                migrations.DeleteModel(name="UsageRecord"),
                migrations.DeleteModel(name="UsageTransaction"),
                migrations.DeleteModel(name="OutboxMessage"),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
