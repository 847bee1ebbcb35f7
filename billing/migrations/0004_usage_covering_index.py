from django.db import migrations


class Migration(migrations.Migration):
    """The period aggregate reads only this index (an index-only scan): one subscription's
    rows are contiguous in it, while in the heap they are spread over a page each."""

    dependencies = [("billing", "0003_usage")]

    operations = [
        migrations.RunSQL(
            sql="""
            DROP INDEX billing_usagerecord_period;
            CREATE INDEX billing_usagerecord_period
                ON billing_usagerecord (subscription_id, metric_id, "timestamp")
                INCLUDE (value, unique_value, id);
            """,
            reverse_sql="""
            DROP INDEX billing_usagerecord_period;
            CREATE INDEX billing_usagerecord_period
                ON billing_usagerecord (subscription_id, metric_id, "timestamp");
            """,
        ),
    ]
