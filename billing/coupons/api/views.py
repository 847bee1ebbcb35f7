"""/api/v1/coupons/ and /api/v1/applied_coupons/ (Lago's resources, in our conventions)."""

from decimal import Decimal
from typing import ClassVar

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from billing.coupons import services
from billing.coupons.models import AppliedCoupon, Coupon
from core.limits import MAX_FEE_CENTS
from core.schema import codes
from core.validators import validate_currency
from core.views import ApiViewSet, not_found
from customers.models import Customer


class CouponSerializer(serializers.ModelSerializer):
    amount_currency = serializers.CharField(
        required=False, allow_blank=True, max_length=3, validators=[validate_currency]
    )
    amount_cents = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_FEE_CENTS
    )
    percentage_rate = serializers.DecimalField(
        required=False,
        allow_null=True,
        max_digits=5,
        decimal_places=2,
        min_value=Decimal("0.01"),
        max_value=100,
        coerce_to_string=True,
    )
    frequency_duration = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=1200
    )
    redemption_limit = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=10**9
    )

    class Meta:
        model = Coupon
        fields = [
            "id",
            "code",
            "name",
            "description",
            "coupon_type",
            "amount_cents",
            "amount_currency",
            "percentage_rate",
            "frequency",
            "frequency_duration",
            "expiration_at",
            "redemption_limit",
            "reusable",
            "status",
            "terminated_at",
            "created_at",
        ]
        read_only_fields = ["id", "status", "terminated_at", "created_at"]
        # A taken code is the service's 409 `coupon_exists`, not a 400.
        extra_kwargs: ClassVar[dict[str, dict[str, list]]] = {"code": {"validators": []}}


class AppliedCouponSerializer(serializers.ModelSerializer):
    coupon_code = serializers.CharField(source="coupon.code", read_only=True)
    customer = serializers.SlugRelatedField(slug_field="external_id", read_only=True)
    percentage_rate = serializers.DecimalField(
        max_digits=5, decimal_places=2, coerce_to_string=True, read_only=True, allow_null=True
    )

    class Meta:
        model = AppliedCoupon
        fields = [
            "id",
            "coupon_code",
            "customer",
            "amount_cents",
            "amount_currency",
            "percentage_rate",
            "frequency",
            "frequency_duration_remaining",
            "amount_cents_remaining",
            "status",
            "created_at",
            "terminated_at",
        ]
        read_only_fields = fields


class ApplyInput(serializers.Serializer):
    customer = serializers.CharField(max_length=255, help_text="The customer's external_id.")
    coupon_code = serializers.CharField(max_length=255)
    amount_cents = serializers.IntegerField(required=False, min_value=1, max_value=MAX_FEE_CENTS)
    percentage_rate = serializers.DecimalField(
        required=False, max_digits=5, decimal_places=2, min_value=Decimal("0.01"), max_value=100
    )


class CouponFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Coupon.Status.choices)

    class Meta:
        model = Coupon
        fields: list[str] = []


class AppliedCouponFilter(filters.FilterSet):
    customer = filters.CharFilter(field_name="customer__external_id")
    coupon_code = filters.CharFilter(field_name="coupon__code")
    status = filters.ChoiceFilter(choices=AppliedCoupon.Status.choices)

    class Meta:
        model = AppliedCoupon
        fields: list[str] = []


@extend_schema(tags=["Coupons"])
@extend_schema_view(
    list=extend_schema(
        operation_id="ListCoupons",
        summary="List coupons",
        description="Coupons, newest first, cursor paginated; filter by status.",
    ),
    retrieve=extend_schema(
        operation_id="GetCoupon",
        summary="Get a coupon",
        description="The coupon with this `code`: its discount, frequency and limits.",
    ),
)
class CouponViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = CouponSerializer
    queryset = Coupon.objects.all()
    lookup_field = "code"
    lookup_value_regex = "[^/]+"
    filterset_class = CouponFilter

    @extend_schema(
        operation_id="CreateCoupon",
        summary="Create a coupon",
        description="A discount taken off invoices' subtotal before tax: `fixed_amount` "
        "(`amount_cents` in `amount_currency`) or `percentage` (`percentage_rate`), "
        "`once`, `recurring` (for `frequency_duration` invoices) or `forever`; optional "
        "`expiration_at` and `redemption_limit` (how many times it may be applied).",
        responses={
            201: CouponSerializer,
            409: codes(coupon_exists="A coupon with this code exists."),
            422: codes(invalid_coupon="Its amount, rate or duration is missing."),
        },
    )
    def create(self, request):
        body = CouponSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        coupon = services.coupon_create(**body.validated_data)
        return Response(CouponSerializer(coupon).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="TerminateCoupon",
        summary="Terminate a coupon",
        description="No customer gets it any more, and it stops applying to those who hold it.",
        request=None,
        responses={200: CouponSerializer, 409: codes(invalid_transition="Terminated already.")},
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def terminate(self, request, code=None):
        return Response(CouponSerializer(services.coupon_terminate(coupon=self.get_object())).data)


@extend_schema(tags=["Coupons"])
@extend_schema_view(
    list=extend_schema(
        operation_id="ListAppliedCoupons",
        summary="List applied coupons",
        description="Coupons held by customers, oldest first (the order they apply in); "
        "filter by customer, coupon code and status.",
    ),
    retrieve=extend_schema(
        operation_id="GetAppliedCoupon",
        summary="Get an applied coupon",
        description="A coupon held by a customer, with the periods or amount it has left.",
    ),
)
class AppliedCouponViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = AppliedCouponSerializer
    queryset = AppliedCoupon.objects.select_related("coupon", "customer")
    filterset_class = AppliedCouponFilter

    @extend_schema(
        operation_id="ApplyCoupon",
        summary="Apply a coupon to a customer",
        description="The customer's next invoices take the coupon off their subtotal, "
        "before tax, in the order coupons were applied. A fixed coupon's `amount_cents` "
        "or a percentage coupon's `percentage_rate` may be set for this customer.",
        request=ApplyInput,
        responses={
            201: AppliedCouponSerializer,
            404: codes(not_found="No such customer or coupon."),
            409: codes(coupon_already_applied="The coupon is not reusable and held."),
            422: codes(
                coupon_expired="The coupon expired.",
                coupon_terminated="The coupon is terminated.",
                redemption_limit_reached="The coupon was applied as often as allowed.",
                currency_mismatch="A fixed coupon in another currency than the customer's.",
                invalid_override="An amount for a percentage coupon, or a rate for a fixed one.",
            ),
        },
    )
    def create(self, request):
        body = ApplyInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        customer = Customer.objects.filter(external_id=data["customer"]).first()
        if customer is None:
            raise not_found(Customer, "external_id", data["customer"])
        coupon = Coupon.objects.filter(code=data["coupon_code"]).first()
        if coupon is None:
            raise not_found(Coupon, "code", data["coupon_code"])
        applied = services.coupon_apply(
            customer=customer,
            coupon=coupon,
            amount_cents=data.get("amount_cents"),
            percentage_rate=data.get("percentage_rate"),
        )
        return Response(AppliedCouponSerializer(applied).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="TerminateAppliedCoupon",
        summary="Remove a coupon from a customer",
        description="The customer's next invoices no longer take this coupon off.",
        request=None,
        responses={
            200: AppliedCouponSerializer,
            409: codes(invalid_transition="Terminated already."),
        },
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def terminate(self, request, pk=None):
        applied = services.applied_coupon_terminate(applied_coupon=self.get_object())
        return Response(AppliedCouponSerializer(applied).data)
