from rest_framework import serializers

from billing.invoicing.api.serializers import InvoiceBaseSerializer
from billing.payments.models import PaymentAttempt


class PaymentAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = PaymentAttempt
        fields = [
            "id",
            "number",
            "status",
            "amount_cents",
            "currency",
            "stripe_payment_intent_id",
            "failure_code",
            "failure_message",
            "created_at",
            "completed_at",
        ]


class InvoiceSerializer(InvoiceBaseSerializer):
    payment_attempts = PaymentAttemptSerializer(many=True, read_only=True, source="attempts")

    class Meta(InvoiceBaseSerializer.Meta):
        fields = [
            *(f for f in InvoiceBaseSerializer.Meta.fields if not f.endswith("ated_at")),
            "payment_attempts",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class InvoiceListSerializer(InvoiceBaseSerializer):
    """Lists leave the lines and attempts out: one query per page, whatever its size."""

    class Meta(InvoiceBaseSerializer.Meta):
        fields = [f for f in InvoiceBaseSerializer.Meta.fields if f != "lines"]
        read_only_fields = fields
