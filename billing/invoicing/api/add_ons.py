"""/api/v1/add_ons/: the catalog of one-off charges, and the body of a one-off invoice."""

from decimal import Decimal
from typing import ClassVar

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from billing.invoicing import one_off
from billing.invoicing.models import AddOn
from core.limits import MAX_FEE_CENTS, MAX_UNITS_INTEGER
from core.schema import codes
from core.validators import validate_currency
from core.views import ApiViewSet, not_found


class AddOnSerializer(serializers.ModelSerializer):
    amount_cents = serializers.IntegerField(min_value=0, max_value=MAX_FEE_CENTS)
    amount_currency = serializers.CharField(max_length=3, validators=[validate_currency])

    class Meta:
        model = AddOn
        fields = [
            "id",
            "code",
            "name",
            "invoice_display_name",
            "description",
            "amount_cents",
            "amount_currency",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        extra_kwargs: ClassVar[dict[str, dict[str, list]]] = {"code": {"validators": []}}


class OneOffFeeInput(serializers.Serializer):
    add_on_code = serializers.CharField(max_length=255)
    units = serializers.DecimalField(
        required=False,
        max_digits=38,
        decimal_places=12,
        min_value=0,
        max_value=MAX_UNITS_INTEGER,
        coerce_to_string=True,
    )
    unit_amount_cents = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_FEE_CENTS, help_text="Instead of the add-on's."
    )
    description = serializers.CharField(required=False, allow_blank=True, max_length=255)


class OneOffInvoiceInput(serializers.Serializer):
    customer = serializers.CharField(max_length=255, help_text="The customer's external_id.")
    currency = serializers.CharField(max_length=3, validators=[validate_currency])
    fees = OneOffFeeInput(many=True, min_length=1, max_length=100)

    def validate_fees(self, rows: list[dict]) -> list[dict]:
        """Resolve each fee's add-on (404 for an unknown code), kept for the view as
        `one_off_fees`."""
        codes_asked = [row.get("add_on_code", "") for row in rows]
        add_ons = {a.code: a for a in AddOn.objects.filter(code__in=codes_asked)}
        self.one_off_fees = []
        for row, code in zip(rows, codes_asked, strict=True):
            if code not in add_ons:
                raise not_found(AddOn, "code", code)
            self.one_off_fees.append(
                one_off.OneOffFee(
                    add_on=add_ons[code],
                    units=row.get("units", Decimal(1)),
                    unit_amount_cents=row.get("unit_amount_cents"),
                    description=row.get("description", ""),
                )
            )
        return rows


@extend_schema(tags=["Add-ons"])
@extend_schema_view(
    list=extend_schema(
        operation_id="ListAddOns",
        summary="List add-ons",
        description="The catalog of one-off charges, by code, cursor paginated.",
    ),
    retrieve=extend_schema(
        operation_id="GetAddOn",
        summary="Get an add-on",
        description="The add-on with this `code`: its name and amount.",
    ),
    destroy=extend_schema(
        operation_id="DeleteAddOn",
        summary="Delete an add-on",
        description="Removes it from the catalog; invoices keep what they billed.",
    ),
)
class AddOnViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, ApiViewSet
):
    serializer_class = AddOnSerializer
    queryset = AddOn.objects.all()
    lookup_field = "code"
    lookup_value_regex = "[^/]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(
        operation_id="CreateAddOn",
        summary="Create an add-on",
        description="A one-off charge (a setup fee, support hours): `amount_cents` in "
        "`amount_currency` per unit, billed on one-off invoices (`POST /invoices/`).",
        responses={201: AddOnSerializer, 409: codes(add_on_exists="The code is taken.")},
    )
    def create(self, request):
        body = AddOnSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        add_on = one_off.add_on_create(**body.validated_data)
        return Response(AddOnSerializer(add_on).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="UpdateAddOn",
        summary="Update an add-on",
        description="Changes the fields given (not `code`); invoices already issued "
        "keep what they billed.",
        responses={200: AddOnSerializer},
    )
    def partial_update(self, request, code=None):
        add_on = self.get_object()
        body = AddOnSerializer(add_on, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        changed = one_off.add_on_update(add_on=add_on, **body.validated_data)
        return Response(AddOnSerializer(changed).data)

    def perform_destroy(self, instance: AddOn) -> None:
        one_off.add_on_delete(add_on=instance)
