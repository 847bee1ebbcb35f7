from rest_framework import serializers

from billing.invoicing.models import Invoice, InvoiceLine


class InvoiceLineSerializer(serializers.ModelSerializer):
    metric = serializers.SlugRelatedField(slug_field="code", read_only=True)
    units = serializers.DecimalField(max_digits=38, decimal_places=12, coerce_to_string=True)
    unit_amount = serializers.DecimalField(max_digits=38, decimal_places=12, coerce_to_string=True)

    class Meta:
        model = InvoiceLine
        fields = [
            "position",
            "fee_type",
            "description",
            "plan_code",
            "metric",
            "charge_model",
            "filter",
            "grouped_by",
            "units",
            "unit_amount",
            "amount_cents",
            "from_datetime",
            "to_datetime",
        ]


class InvoiceBaseSerializer(serializers.ModelSerializer):
    """An invoice as invoicing knows it; billing.payments adds its payment attempts."""

    customer = serializers.SlugRelatedField(slug_field="external_id", read_only=True)
    subscription = serializers.SlugRelatedField(slug_field="external_id", read_only=True)
    tax_rate = serializers.DecimalField(max_digits=5, decimal_places=2, coerce_to_string=True)
    payable_amount_cents = serializers.IntegerField(
        read_only=True, help_text="The total less prepaid credits and credit balance applied."
    )
    amount_due_cents = serializers.IntegerField(
        read_only=True, help_text="The payable less what was paid and what credit notes offset."
    )
    lines = InvoiceLineSerializer(many=True, read_only=True)
    payment_blocked_detail = serializers.CharField(
        read_only=True, help_text="Why collection waits, in words (the reason is its code)."
    )

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "customer",
            "subscription",
            "period_start",
            "period_end",
            "currency",
            "invoice_type",
            "status",
            "payment_status",
            "fees_amount_cents",
            "coupons_amount_cents",
            "subtotal_amount_cents",
            "tax_rate",
            "taxes_amount_cents",
            "total_amount_cents",
            "prepaid_credit_amount_cents",
            "credit_balance_amount_cents",
            "payable_amount_cents",
            "paid_amount_cents",
            "offset_amount_cents",
            "credited_amount_cents",
            "refunded_amount_cents",
            "amount_due_cents",
            "issued_at",
            "due_date",
            "voided_at",
            "paid_at",
            "next_payment_attempt_at",
            "payment_blocked_reason",
            "payment_blocked_detail",
            "engine",
            "lago_id",
            "reconciliation",
            "reconciliation_note",
            "lines",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class GenerateInvoiceSerializer(serializers.Serializer):
    subscription = serializers.CharField(max_length=255)
    period_start = serializers.DateTimeField(required=False)
    period_end = serializers.DateTimeField(required=False)

    def validate(self, attrs):
        if ("period_start" in attrs) != ("period_end" in attrs):
            raise serializers.ValidationError(
                "Give both period_start and period_end, or neither (the last closed period)."
            )
        return attrs


class PreviewLineSerializer(serializers.Serializer):
    fee_type = serializers.CharField(help_text="`subscription` (a fixed fee) or `charge`.")
    description = serializers.CharField()
    plan_code = serializers.CharField()
    metric = serializers.CharField(source="metric_code", allow_blank=True)
    charge_model = serializers.CharField(allow_blank=True)
    units = serializers.DecimalField(max_digits=38, decimal_places=12, coerce_to_string=True)
    unit_amount = serializers.DecimalField(max_digits=38, decimal_places=12, coerce_to_string=True)
    amount_cents = serializers.IntegerField()
    from_datetime = serializers.DateTimeField(source="start")
    to_datetime = serializers.DateTimeField(source="end")


class InvoicePreviewSerializer(serializers.Serializer):
    subscription = serializers.CharField(source="subscription.external_id")
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    currency = serializers.CharField()
    lines = PreviewLineSerializer(many=True)
    fees_amount_cents = serializers.IntegerField(source="totals.fees_amount_cents")
    coupons_amount_cents = serializers.IntegerField(source="totals.coupons_amount_cents")
    subtotal_amount_cents = serializers.IntegerField(source="totals.subtotal_amount_cents")
    tax_rate = serializers.DecimalField(
        source="totals.tax_rate", max_digits=5, decimal_places=2, coerce_to_string=True
    )
    taxes_amount_cents = serializers.IntegerField(source="totals.taxes_amount_cents")
    total_amount_cents = serializers.IntegerField(source="totals.total_amount_cents")


class PreviewInvoiceSerializer(serializers.Serializer):
    subscription = serializers.CharField(max_length=255, help_text="Its external_id.")
