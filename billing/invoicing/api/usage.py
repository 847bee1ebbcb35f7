"""GET /subscriptions/{external_id}/usage/: a period's usage so far, with the fee each
charge would produce (served here, not by subscriptions, because it rates)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from billing.invoicing.selectors import subscription_usage
from core.exceptions import UnprocessableEntity
from core.schema import codes
from core.views import ApiViewSet
from subscriptions.models import Subscription
from subscriptions.services import subscription_as_of


class UsagePeriodSerializer(serializers.Serializer):
    def get_fields(self):
        # `from` is a keyword in Python; declared here by name.
        return {
            "from": serializers.DateTimeField(required=False),
            "to": serializers.DateTimeField(required=False),
        }

    def validate(self, attrs):
        if attrs.get("from") and attrs.get("to") and attrs["from"] >= attrs["to"]:
            raise serializers.ValidationError({"to": "Must be after from."})
        return attrs


class PhaseFeeSerializer(serializers.Serializer):
    plan = serializers.CharField(help_text="The plan's code over this stretch.")
    units = serializers.DecimalField(max_digits=38, decimal_places=12, normalize_output=True)
    amount_cents = serializers.IntegerField()
    filter = serializers.CharField(
        help_text="The charge filter this fee prices (its display name); blank for the "
        "events no filter matches, or a charge without filters."
    )
    grouped_by = serializers.DictField(
        child=serializers.CharField(allow_null=True),
        help_text="The pricing group ({key: value}) of a charge with pricing_group_keys.",
    )

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField(source="start")
        fields["to"] = serializers.DateTimeField(source="end")
        return fields


class MetricUsageSerializer(serializers.Serializer):
    metric = serializers.CharField()
    aggregation = serializers.CharField()
    units = serializers.DecimalField(max_digits=38, decimal_places=12, normalize_output=True)
    amount_cents = serializers.IntegerField()
    fees = PhaseFeeSerializer(
        many=True,
        help_text=(
            "The charge's fee per plan the subscription was on over the stretch read: a "
            "plan change mid-period prices each side at its own plan, as the invoice does."
        ),
    )


class SubscriptionUsageSerializer(serializers.Serializer):
    subscription = serializers.CharField()
    currency = serializers.CharField()
    metrics = MetricUsageSerializer(many=True)
    amount_cents = serializers.IntegerField(help_text="The sum of the metrics' amounts.")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField()
        fields["to"] = serializers.DateTimeField()
        return fields


class SubscriptionUsageViewSet(ApiViewSet):
    queryset = Subscription.objects.select_related("plan")
    lookup_field = "external_id"
    lookup_value_regex = "[^/]+"
    pagination_class = None

    @extend_schema(
        operation_id="GetSubscriptionUsage",
        tags=["Usage"],
        summary="Get a subscription's usage and fees so far",
        description="Each metric the subscription's plan charges for, with its units in a "
        "period and the fee its charge would produce, priced as the invoice will be, and "
        "their total. Default: the current billing period. Reads only: nothing is "
        "invoiced.",
        parameters=[
            OpenApiParameter(
                "from", OpenApiTypes.DATETIME, description="Default: the period's start."
            ),
            OpenApiParameter(
                "to", OpenApiTypes.DATETIME, description="Default: the period's end; after `from`."
            ),
        ],
        responses={
            200: SubscriptionUsageSerializer,
            422: codes(
                no_current_period="The subscription has no current period (it has not "
                "started): give `from` and `to`."
            ),
        },
    )
    def retrieve(self, request, external_id=None):
        subscription = subscription_as_of(subscription=self.get_object())
        query = UsagePeriodSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start = query.validated_data.get("from") or subscription.current_period_start
        end = query.validated_data.get("to") or subscription.current_period_end
        if start is None or end is None:
            raise UnprocessableEntity(
                "This subscription has no current period: give from and to.",
                code="no_current_period",
            )
        lines = subscription_usage(subscription=subscription, start=start, end=end)
        return Response(
            SubscriptionUsageSerializer(
                {
                    "subscription": subscription.external_id,
                    "from": start,
                    "to": end,
                    "currency": subscription.plan.currency,
                    "metrics": lines,
                    "amount_cents": sum(line.amount_cents for line in lines),
                }
            ).data
        )
