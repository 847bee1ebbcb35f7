from django.db import migrations, models


class Migration(migrations.Migration):
    """An event can carry its own amount (Lago's `precise_total_amount_cents`), which a
    dynamic charge sums. The table is partitioned and unmanaged: the column is added to
    the parent, which adds it to every partition; a nullable column without a default
    rewrites nothing."""

    dependencies = [("usage", "0004_alter_usageforwardingrun_options")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="usagerecord",
                    name="precise_total_amount_cents",
                    field=models.DecimalField(decimal_places=12, max_digits=38, null=True),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql="ALTER TABLE billing_usagerecord "
                    "ADD COLUMN precise_total_amount_cents numeric(38, 12) NULL",
                    reverse_sql="ALTER TABLE billing_usagerecord "
                    "DROP COLUMN precise_total_amount_cents",
                ),
            ],
        ),
    ]
