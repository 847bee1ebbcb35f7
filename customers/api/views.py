from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.response import Response

from billing.selectors import sync_states
from core.views import ApiViewSet
from customers import selectors, services
from customers.api.serializers import CustomerSerializer
from customers.models import Customer


class CustomerFilter(filters.FilterSet):
    search = filters.CharFilter(method="noop", help_text="Part of external_id, name or email.")
    email = filters.CharFilter(method="noop")
    country = filters.CharFilter(method="noop")
    created_after = filters.IsoDateTimeFilter(method="noop")

    class Meta:
        model = Customer
        fields = []

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
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    ApiViewSet,
):
    serializer_class = CustomerSerializer
    queryset = Customer.objects.all()
    lookup_field = "external_id"
    lookup_value_regex = "[^/]+"
    filterset_class = CustomerFilter
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_serializer_context(self):
        context = super().get_serializer_context()
        page = getattr(self, "_page", None)
        if page is not None:
            # One query for the sync state of the whole page, not one per customer.
            context["sync_states"] = sync_states(
                object_type="customers.customer",
                objects=page,
                remote_ids={"stripe": "stripe_customer_id", "lago": "lago_id"},
            )
        return context

    def paginate_queryset(self, queryset):
        self._page = super().paginate_queryset(queryset)
        return self._page

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_create(**serializer.validated_data)
        return Response(self.get_serializer(customer).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        customer = self.get_object()
        serializer = self.get_serializer(customer, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_update(customer=customer, **serializer.validated_data)
        return Response(self.get_serializer(customer).data)
