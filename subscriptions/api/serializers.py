from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.sync.api import SyncProviderSerializer, sync_state_of
from core.limits import MAX_FEE_CENTS, MAX_TRIAL_DAYS
from core.validators import (
    SlugRelatedField,
    external_id_field,
    json_storable,
    validate_currency,
)
from customers.models import Customer
from subscriptions.charges import validate_charge, validate_metric_filters
from subscriptions.models import BillableMetric, Charge, Plan, Subscription

LAGO_REMOTE_IDS = {"lago": "lago_id"}


class LagoSyncSerializer(serializers.Serializer):
    lago = SyncProviderSerializer()


class _SyncedSerializer(serializers.ModelSerializer):
    """Metrics, plans and subscriptions go to Lago only (Stripe holds no such thing)."""

    sync = serializers.SerializerMethodField()

    @extend_schema_field(LagoSyncSerializer)
    def get_sync(self, obj) -> dict:
        return LagoSyncSerializer(sync_state_of(self, obj, LAGO_REMOTE_IDS)).data


class BillableMetricSerializer(_SyncedSerializer):
    # Declared, not derived, so a duplicate is the service's 409, not a 400 from a validator.
    code = serializers.SlugField(max_length=255)
    filters = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        validators=[json_storable],
        help_text=(
            "Lago's metric filters: the event properties charges may price by, each with "
            'its values: [{"key": "model", "values": ["small", "large"]}].'
        ),
    )

    class Meta:
        model = BillableMetric
        fields = [
            "id",
            "code",
            "name",
            "description",
            "aggregation",
            "field_name",
            "negative_values_allowed",
            "filters",
            "recurring",
            "weighted_interval",
            "lago_id",
            "sync",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "lago_id", "created_at", "updated_at"]
        extra_kwargs = {
            "field_name": {"required": False, "allow_blank": True},
            "description": {"required": False, "allow_blank": True},
            "weighted_interval": {"required": False, "allow_blank": True},
        }

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:
            fields["code"].read_only = True
        return fields

    def validate_filters(self, value: list) -> list:
        try:
            return validate_metric_filters(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc


class ChargeSerializer(serializers.ModelSerializer):
    metric = SlugRelatedField(slug_field="code", queryset=BillableMetric.objects.all())
    model = serializers.ChoiceField(source="charge_model", choices=Charge.Model.choices)
    properties = serializers.DictField(validators=[json_storable])
    filters = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        validators=[json_storable],
        help_text=(
            "Lago's charge filters: [{invoice_display_name, properties, values: {key: "
            "[value, ...]}}]. An event is priced by the most specific filter it matches "
            "(more keys, then fewer values, then the earlier filter); `properties` price "
            "the events that match none. `pricing_group_keys` in any properties rate "
            "each distinct combination of those event properties as its own fee."
        ),
    )

    class Meta:
        model = Charge
        fields = ["id", "metric", "model", "properties", "filters", "prorated"]
        read_only_fields = ["id"]

    def validate(self, attrs):
        try:
            validate_charge(
                attrs["charge_model"],
                properties=attrs["properties"],
                filters=attrs.get("filters"),
                prorated=attrs.get("prorated", False),
                metric=attrs["metric"],
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs


class MinimumCommitmentSerializer(serializers.Serializer):
    """Lago's MinimumCommitmentInput, kept on the plan's own two fields; null: none."""

    amount_cents = serializers.IntegerField(
        source="minimum_commitment_amount_cents", min_value=1, max_value=MAX_FEE_CENTS
    )
    invoice_display_name = serializers.CharField(
        source="minimum_commitment_invoice_display_name",
        max_length=255,
        required=False,
        allow_blank=True,
    )

    def validate_empty_values(self, data):
        if data is None:  # removes the commitment
            return True, {
                "minimum_commitment_amount_cents": None,
                "minimum_commitment_invoice_display_name": "",
            }
        return super().validate_empty_values(data)

    def validate(self, attrs):
        # Required even in a PATCH (partial): Lago's MinimumCommitmentInput requires it.
        if "minimum_commitment_amount_cents" not in attrs:
            raise serializers.ValidationError({"amount_cents": "This field is required."})
        return attrs

    def to_representation(self, instance):
        if instance.minimum_commitment_amount_cents is None:
            return None
        return super().to_representation(instance)


class PlanSerializer(_SyncedSerializer):
    code = serializers.SlugField(max_length=255)
    charges = ChargeSerializer(many=True, required=False)
    minimum_commitment = MinimumCommitmentSerializer(source="*", required=False, allow_null=True)
    currency = serializers.CharField(max_length=3)
    amount_cents = serializers.IntegerField(min_value=0, max_value=MAX_FEE_CENTS)
    trial_days = serializers.IntegerField(min_value=0, max_value=MAX_TRIAL_DAYS, required=False)

    class Meta:
        model = Plan
        fields = [
            "id",
            "code",
            "name",
            "description",
            "interval",
            "amount_cents",
            "currency",
            "pay_in_advance",
            "trial_days",
            "charges",
            "minimum_commitment",
            "lago_id",
            "sync",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "lago_id", "created_at", "updated_at"]
        extra_kwargs = {"description": {"required": False, "allow_blank": True}}

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:
            fields["code"].read_only = True
        return fields

    def validate_currency(self, value: str) -> str:
        value = value.upper()
        validate_currency(value)
        return value


class SubscriptionSerializer(_SyncedSerializer):
    external_id = external_id_field()
    customer = SlugRelatedField(slug_field="external_id", queryset=Customer.objects.all())
    plan = SlugRelatedField(slug_field="code", queryset=Plan.objects.all())
    next_plan = serializers.SlugRelatedField(slug_field="code", read_only=True)
    overrides = serializers.DictField(required=False, validators=[json_storable])
    amount_cents = serializers.IntegerField(read_only=True)
    currency = serializers.CharField(source="plan.currency", read_only=True)
    bill_past_periods = serializers.BooleanField(default=False, write_only=True)

    class Meta:
        model = Subscription
        fields = [
            "id",
            "external_id",
            "name",
            "customer",
            "plan",
            "status",
            "billing_time",
            "start_at",
            "bill_past_periods",
            "started_at",
            "billing_anchor_at",
            "trial_ends_at",
            "current_period_start",
            "current_period_end",
            "cancel_at_period_end",
            "canceled_at",
            "terminated_at",
            "ended_at",
            "amount_cents",
            "currency",
            "overrides",
            "next_plan",
            "lago_id",
            "sync",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "status",
            "started_at",
            "billing_anchor_at",
            "trial_ends_at",
            "current_period_start",
            "current_period_end",
            "cancel_at_period_end",
            "canceled_at",
            "terminated_at",
            "ended_at",
            "lago_id",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {
            "name": {"required": False, "allow_blank": True},
            "start_at": {"required": False},
        }


class SubscriptionUpdateSerializer(serializers.Serializer):
    plan = SlugRelatedField(slug_field="code", queryset=Plan.objects.all(), required=False)
    overrides = serializers.DictField(required=False, validators=[json_storable])
    name = serializers.CharField(required=False, allow_blank=True, max_length=255)


class CancelSerializer(serializers.Serializer):
    at_period_end = serializers.BooleanField(default=True)
