from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from billing.sync.api import SyncStatesMixin
from core.views import ApiViewSet, ServiceWriteMixin
from subscriptions import selectors, services
from subscriptions.api.serializers import (
    LAGO_REMOTE_IDS,
    BillableMetricSerializer,
    CancelSerializer,
    PlanSerializer,
    SubscriptionSerializer,
    SubscriptionUpdateSerializer,
)
from subscriptions.models import BillableMetric, Plan, Subscription

SLUG = "[^/]+"


class _ReadCreateUpdate(
    SyncStatesMixin,
    ServiceWriteMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    ApiViewSet,
):
    http_method_names = ["get", "post", "patch", "head", "options"]
    sync_remote_ids = LAGO_REMOTE_IDS


@extend_schema_view(
    list=extend_schema(operation_id="ListBillableMetrics"),
    create=extend_schema(operation_id="CreateBillableMetric"),
    retrieve=extend_schema(operation_id="GetBillableMetric"),
    partial_update=extend_schema(operation_id="UpdateBillableMetric"),
)
class BillableMetricViewSet(_ReadCreateUpdate):
    serializer_class = BillableMetricSerializer
    queryset = BillableMetric.objects.all()
    lookup_field = "code"
    lookup_value_regex = SLUG
    create_service = staticmethod(services.metric_create)
    update_service = staticmethod(services.metric_update)
    update_kwarg = "metric"


@extend_schema_view(
    list=extend_schema(operation_id="ListPlans"),
    create=extend_schema(operation_id="CreatePlan"),
    retrieve=extend_schema(operation_id="GetPlan"),
    partial_update=extend_schema(operation_id="UpdatePlan"),
)
class PlanViewSet(_ReadCreateUpdate):
    serializer_class = PlanSerializer
    queryset = Plan.objects.prefetch_related("charges__metric")
    lookup_field = "code"
    lookup_value_regex = SLUG
    create_service = staticmethod(services.plan_create)
    update_service = staticmethod(services.plan_update)
    update_kwarg = "plan"


class SubscriptionFilter(filters.FilterSet):
    customer = filters.CharFilter(method="noop", help_text="The customer's external_id.")
    status = filters.ChoiceFilter(method="noop", choices=Subscription.Status.choices)
    plan = filters.CharFilter(method="noop", help_text="The plan's code.")

    class Meta:
        model = Subscription
        fields: list[str] = []

    def noop(self, queryset, name, value):
        return queryset

    def filter_queryset(self, queryset):
        return selectors.subscription_list(**{k: v for k, v in self.form.cleaned_data.items() if v})


@extend_schema_view(
    list=extend_schema(operation_id="ListSubscriptions"),
    create=extend_schema(operation_id="CreateSubscription"),
    retrieve=extend_schema(operation_id="GetSubscription"),
    partial_update=extend_schema(
        operation_id="UpdateSubscription", request=SubscriptionUpdateSerializer
    ),
)
class SubscriptionViewSet(_ReadCreateUpdate):
    serializer_class = SubscriptionSerializer
    queryset = Subscription.objects.select_related("customer", "plan", "next_plan")
    lookup_field = "external_id"
    lookup_value_regex = SLUG
    filterset_class = SubscriptionFilter
    create_service = staticmethod(services.subscription_create)

    def retrieve(self, request, *args, **kwargs):
        # Its current period as the clock has it, even before the beat job has run.
        subscription = services.subscription_as_of(subscription=self.get_object())
        return Response(self.get_serializer(subscription).data)

    def partial_update(self, request, *args, **kwargs):
        subscription = self.get_object()
        body = SubscriptionUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        subscription = services.subscription_update(
            subscription=subscription, **body.validated_data
        )
        return Response(self.get_serializer(subscription).data)

    @extend_schema(
        operation_id="CancelSubscription",
        request=CancelSerializer,
        responses=SubscriptionSerializer,
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def cancel(self, request, external_id=None):
        body = CancelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        subscription = services.subscription_cancel(
            subscription=self.get_object(), **body.validated_data
        )
        return Response(self.get_serializer(subscription).data)

    @extend_schema(
        operation_id="ReactivateSubscription", request=None, responses=SubscriptionSerializer
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def reactivate(self, request, external_id=None):
        subscription = services.subscription_reactivate(subscription=self.get_object())
        return Response(self.get_serializer(subscription).data)
