from rest_framework import serializers

from billing.usage.models import UsageRecord
from core.schema import ErrorItemSerializer
from core.validators import json_storable


# The documented shape of an event (OpenAPI). Requests are checked by
# billing.usage.parse_event, which does the same checks without per-event field copies.
class UsageEventSerializer(serializers.Serializer):
    """One usage event."""

    transaction_id = serializers.CharField(
        max_length=255,
        help_text="Your unique id for this event: an event is counted once per id.",
    )
    subscription = serializers.CharField(
        max_length=255, help_text="The subscription's external_id."
    )
    metric = serializers.CharField(max_length=255, help_text="The billable metric's code.")
    timestamp = serializers.DateTimeField(required=False, help_text="Defaults to now.")
    properties = serializers.DictField(
        required=False,
        default=dict,
        validators=[json_storable],
        help_text="The event's properties; the metric's `field_name` names the one it "
        "aggregates (a number for `sum`, `max` and `latest`).",
    )
    precise_total_amount_cents = serializers.DecimalField(
        max_digits=25,
        decimal_places=12,
        required=False,
        allow_null=True,
        coerce_to_string=True,
        help_text="The event's own amount in minor units, which a dynamic charge sums.",
    )


class UsageBatchSerializer(serializers.Serializer):
    # Each event is checked on its own in the view: one bad event rejects only itself.
    events = serializers.ListField(
        child=UsageEventSerializer(), max_length=1000, min_length=1, help_text="1 to 1,000."
    )


class UsageRecordSerializer(serializers.ModelSerializer):
    subscription = serializers.SlugRelatedField(slug_field="external_id", read_only=True)
    metric = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = UsageRecord
        fields = [
            "id",
            "transaction_id",
            "subscription",
            "metric",
            "timestamp",
            "properties",
            "precise_total_amount_cents",
            "received_at",
            "lago_status",
        ]
        read_only_fields = fields


class UsageResultSerializer(serializers.Serializer):
    transaction_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["created", "duplicate", "conflict", "invalid"])
    errors = ErrorItemSerializer(many=True, help_text="Why it is `conflict` or `invalid`.")


class UsageBatchResultSerializer(serializers.Serializer):
    results = UsageResultSerializer(many=True)
