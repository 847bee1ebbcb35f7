from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.sync.api import SyncProviderSerializer, sync_state_of
from core.validators import (
    external_id_field,
    validate_country,
    validate_currency,
    validate_metadata,
)
from customers.models import Customer, PaymentMethod
from customers.services import UPDATABLE_FIELDS

CUSTOMER_REMOTE_IDS = {"stripe": "stripe_customer_id", "lago": "lago_id"}


class SyncSerializer(serializers.Serializer):
    lago = SyncProviderSerializer()
    stripe = SyncProviderSerializer()


class CustomerSerializer(serializers.ModelSerializer):
    external_id = external_id_field()
    email = serializers.EmailField(required=False, allow_blank=True, allow_null=True)
    currency = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    country = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    metadata = serializers.DictField(required=False, validators=[validate_metadata])
    sync = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = [
            "id",
            "external_id",
            "name",
            "email",
            "currency",
            "country",
            "address_line1",
            "city",
            "zipcode",
            "state",
            "tax_id",
            "tax_rate",
            "metadata",
            "stripe_customer_id",
            "lago_id",
            "sync",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "stripe_customer_id", "lago_id", "created_at", "updated_at"]
        extra_kwargs = {
            name: {"required": False, "allow_blank": True, "allow_null": True, "max_length": 255}
            for name in ["name", "address_line1", "city", "zipcode", "state", "tax_id"]
        }

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None and not isinstance(self.instance, list):
            # external_id is the customer's address in our API: fixed once created.
            fields["external_id"].read_only = True
        return fields

    # Codes are taken in any case and stored upper case; the rules are the model's own.
    def validate_currency(self, value: str | None) -> str:
        value = (value or "").upper()
        validate_currency(value)
        return value

    def validate_country(self, value: str | None) -> str:
        value = (value or "").upper()
        validate_country(value)
        return value

    @extend_schema_field(SyncSerializer)
    def get_sync(self, obj: Customer) -> dict:
        return SyncSerializer(sync_state_of(self, obj, CUSTOMER_REMOTE_IDS)).data

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # Stored as "" (no NULLs in text columns); shown as null, like Lago and Stripe.
        for name in UPDATABLE_FIELDS:
            if name != "metadata":
                data[name] = data[name] or None
        return data


class PaymentMethodSerializer(serializers.ModelSerializer):
    class Meta:
        model = PaymentMethod
        fields = [
            "id",
            "stripe_payment_method_id",
            "type",
            "brand",
            "last4",
            "exp_month",
            "exp_year",
            "fingerprint",
            "billing_country",
            "is_default",
            "status",
            "detached_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PaymentMethodAddSerializer(serializers.Serializer):
    stripe_payment_method_id = serializers.RegexField(
        r"^pm_[A-Za-z0-9_]+$", max_length=255, help_text="The pm_… id from Stripe.js."
    )
    set_default = serializers.BooleanField(default=False)


class SetupIntentSerializer(serializers.Serializer):
    id = serializers.CharField(read_only=True)
    client_secret = serializers.CharField(read_only=True)
