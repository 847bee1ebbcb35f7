from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from billing.sync.api import SyncStatesMixin
from core.views import ApiViewSet, ServiceWriteMixin, not_found
from customers import selectors, services
from customers.api.serializers import (
    CUSTOMER_REMOTE_IDS,
    CustomerSerializer,
    PaymentMethodAddSerializer,
    PaymentMethodSerializer,
    SetupIntentSerializer,
)
from customers.models import Customer, PaymentMethod

PM_ID = r"(?P<payment_method_id>[0-9a-f-]{36})"


class CustomerFilter(filters.FilterSet):
    search = filters.CharFilter(method="noop", help_text="Part of external_id, name or email.")
    email = filters.CharFilter(method="noop")
    country = filters.CharFilter(method="noop")
    created_after = filters.IsoDateTimeFilter(method="noop")

    class Meta:
        model = Customer
        fields: list[str] = []

    def noop(self, queryset, name, value):
        # Validation and the schema come from the FilterSet; the query is the selector's.
        return queryset

    def filter_queryset(self, queryset):
        return selectors.customer_list(**{k: v for k, v in self.form.cleaned_data.items() if v})


@extend_schema_view(
    list=extend_schema(operation_id="ListCustomers"),
    create=extend_schema(operation_id="CreateCustomer"),
    retrieve=extend_schema(operation_id="GetCustomer"),
    partial_update=extend_schema(operation_id="UpdateCustomer"),
)
class CustomerViewSet(
    SyncStatesMixin,
    ServiceWriteMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    ApiViewSet,
):
    serializer_class = CustomerSerializer
    queryset = Customer.objects.all()
    lookup_field = "external_id"
    lookup_value_regex = "[^/]+"
    filterset_class = CustomerFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    create_service = staticmethod(services.customer_create)
    update_service = staticmethod(services.customer_update)
    update_kwarg = "customer"
    sync_remote_ids = CUSTOMER_REMOTE_IDS

    # --- Payment methods (card data never reaches us: Stripe.js collects it) ---------
    def _payment_method(self, payment_method_id: str) -> PaymentMethod:
        customer = self.get_object()
        method = PaymentMethod.objects.filter(pk=payment_method_id, customer=customer).first()
        if method is None:
            raise not_found(
                PaymentMethod, "id", payment_method_id, of=f"customer '{customer.external_id}'"
            )
        return method

    @extend_schema(operation_id="CreateSetupIntent", request=None, responses=SetupIntentSerializer)
    @action(detail=True, methods=["post"], url_path="setup_intents")
    def setup_intents(self, request, external_id=None):
        intent = services.setup_intent_create(customer=self.get_object())
        return Response(SetupIntentSerializer(intent).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["get"],
        operation_id="ListPaymentMethods",
        parameters=[OpenApiParameter("status", enum=["active", "detached"])],
        responses=PaymentMethodSerializer(many=True),
    )
    @extend_schema(
        methods=["post"],
        operation_id="AddPaymentMethod",
        request=PaymentMethodAddSerializer,
        responses={201: PaymentMethodSerializer},
    )
    @action(detail=True, methods=["get", "post"], url_path="payment_methods", filterset_class=None)
    def payment_methods(self, request, external_id=None):
        customer = self.get_object()
        if request.method == "POST":
            body = PaymentMethodAddSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            method = services.payment_method_add(customer=customer, **body.validated_data)
            return Response(PaymentMethodSerializer(method).data, status=status.HTTP_201_CREATED)
        wanted = request.query_params.get("status", PaymentMethod.Status.ACTIVE)
        methods = customer.payment_methods.filter(status=wanted)
        page = self.paginator.paginate_queryset(methods, request, view=self)
        return self.paginator.get_paginated_response(PaymentMethodSerializer(page, many=True).data)

    @extend_schema(operation_id="RemovePaymentMethod", request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=f"payment_methods/{PM_ID}")
    def remove_payment_method(self, request, external_id=None, payment_method_id=None):
        method = self._payment_method(payment_method_id)
        removed = services.payment_method_remove(customer=method.customer, payment_method=method)
        response = Response(status=status.HTTP_204_NO_CONTENT)
        owed = removed.open_invoices_left_without_card
        if owed:
            # Allowed, but the caller is told: these invoices cannot be collected now.
            response["Billing-Warning"] = f"last_payment_method_removed; open_invoices={owed}"
        return response

    @extend_schema(
        operation_id="SetDefaultPaymentMethod", request=None, responses=PaymentMethodSerializer
    )
    @action(detail=True, methods=["post"], url_path=f"payment_methods/{PM_ID}/set_default")
    def set_default_payment_method(self, request, external_id=None, payment_method_id=None):
        method = self._payment_method(payment_method_id)
        method = services.payment_method_set_default(
            customer=method.customer, payment_method=method
        )
        return Response(PaymentMethodSerializer(method).data)
