from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from billing.sync.api import SyncStatesMixin
from core.schema import codes
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
INVALID_TRANSITION = "The subscription's current state does not allow it; `detail` names the state."
CURRENCY_MISMATCH = "The plan's currency is not the customer's."


class _ReadCreateUpdate(
    SyncStatesMixin,
    ServiceWriteMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    ApiViewSet,
):
    http_method_names = ["get", "post", "patch", "head", "options"]
    sync_remote_ids = LAGO_REMOTE_IDS


@extend_schema(tags=["Billable metrics"])
@extend_schema_view(
    list=extend_schema(
        operation_id="ListBillableMetrics",
        summary="List billable metrics",
        description="Billable metrics, newest first, cursor paginated.",
    ),
    create=extend_schema(
        operation_id="CreateBillableMetric",
        summary="Create a billable metric",
        description="Creates a billable metric: how usage events of one kind become units "
        "per billing period. `count` counts the events; `sum`, `max`, `unique_count` and "
        "`latest` aggregate the event property named by `field_name`. Plans price a metric "
        "with charges. When Lago is configured, the metric reaches it in the background "
        "(see `sync`).",
        responses={
            201: BillableMetricSerializer,
            409: codes(metric_exists="A metric with this `code` exists."),
        },
    ),
    retrieve=extend_schema(
        operation_id="GetBillableMetric",
        summary="Get a billable metric",
        description="The billable metric with this `code`.",
    ),
    partial_update=extend_schema(
        operation_id="UpdateBillableMetric",
        summary="Update a billable metric",
        description="Changes the fields given. `code` cannot change. While a subscribed "
        "plan charges for the metric (or usage priced by it is not yet invoiced), its "
        "`aggregation` and `field_name` are frozen: create a new metric instead.",
        responses={
            200: BillableMetricSerializer,
            409: codes(
                metric_in_use="A subscribed plan charges for the metric: its `aggregation` "
                "and `field_name` cannot change."
            ),
        },
    ),
)
class BillableMetricViewSet(_ReadCreateUpdate):
    serializer_class = BillableMetricSerializer
    queryset = BillableMetric.objects.all()
    lookup_field = "code"
    lookup_value_regex = SLUG
    create_service = staticmethod(services.metric_create)
    update_service = staticmethod(services.metric_update)
    update_kwarg = "metric"


@extend_schema(tags=["Plans"])
@extend_schema_view(
    list=extend_schema(
        operation_id="ListPlans",
        summary="List plans",
        description="Plans with their charges, newest first, cursor paginated.",
    ),
    create=extend_schema(
        operation_id="CreatePlan",
        summary="Create a plan",
        description="Creates a plan: a fixed fee (`amount_cents` in `currency`) per "
        "`interval`, paid in advance or in arrears, optional `trial_days`, and at most one "
        "charge per billable metric, priced with one of Lago's charge models (`standard`, "
        "`graduated`, `volume`, `package`, `percentage`; prices are decimal strings). When "
        "Lago is configured, the plan reaches it in the background (see `sync`).",
        responses={
            201: PlanSerializer,
            409: codes(plan_exists="A plan with this `code` exists."),
        },
    ),
    retrieve=extend_schema(
        operation_id="GetPlan",
        summary="Get a plan",
        description="The plan with this `code`, with its charges.",
    ),
    partial_update=extend_schema(
        operation_id="UpdatePlan",
        summary="Update a plan",
        description="Changes the fields given; `charges`, when given, replace all the "
        "plan's charges. `code` cannot change. Name and description may change at any "
        "time; the prices (`interval`, `amount_cents`, `currency`, `pay_in_advance`, "
        "`trial_days`, `charges`) only while no subscription is on the plan, scheduled "
        "onto it, or has time on it not yet invoiced: otherwise create a new plan and "
        "move the subscriptions to it.",
        responses={
            200: PlanSerializer,
            409: codes(plan_in_use="The plan is in use: its prices are frozen."),
        },
    ),
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


@extend_schema(tags=["Subscriptions"])
@extend_schema_view(
    list=extend_schema(
        operation_id="ListSubscriptions",
        summary="List subscriptions",
        description="Subscriptions, newest first, cursor paginated; filter by customer "
        "(`external_id`), plan (`code`) or status.",
    ),
    create=extend_schema(
        operation_id="CreateSubscription",
        summary="Subscribe a customer to a plan",
        description="Subscribes the customer (its `external_id`) to the plan (its `code`), "
        "addressed from then on by the subscription's own `external_id`. A `start_at` now "
        "or in the past (default: now) makes it `active` at once, with its first billing "
        "period; a future one leaves it `pending` until then. `billing_time` `calendar` "
        "(default) aligns periods on the calendar (weeks from Monday, months from the "
        "1st), `anniversary` on the start date. A `start_at` more than one billing period "
        "back is refused unless `bill_past_periods` is true; then every past period is "
        "billed on one catch-up invoice. `overrides` (`amount_cents`, `charges`) change "
        "the plan's prices for this subscription only. When Lago is configured, the "
        "subscription reaches it in the background (see `sync`).",
        responses={
            201: SubscriptionSerializer,
            409: codes(
                subscription_exists="A subscription with this `external_id` exists.",
                currency_mismatch=CURRENCY_MISMATCH,
            ),
            422: codes(
                start_at_in_past="`start_at` is more than one billing period back and "
                "`bill_past_periods` is not true, or more periods back than may be billed "
                "(`attr` is `start_at`).",
                start_at_out_of_range="`start_at` is before 2000-01-01 or more than five "
                "years ahead (`attr` is `start_at`).",
            ),
        },
    ),
    retrieve=extend_schema(
        operation_id="GetSubscription",
        summary="Get a subscription",
        description="The subscription with this `external_id`: its state, current period "
        "and any change scheduled for the period end (`next_plan`, "
        "`cancel_at_period_end`).",
    ),
    partial_update=extend_schema(
        operation_id="UpdateSubscription",
        summary="Change a subscription's plan, overrides or name",
        description="A change to a plan with the same or a higher yearly fixed fee (an "
        "upgrade) takes effect now, and the current period is prorated between the two "
        "plans; a lower one (a downgrade) is scheduled for the end of the current period "
        "(`next_plan`). Giving the current plan again drops a scheduled change. A pending "
        "subscription simply changes plan. A canceled or terminated one cannot change.",
        request=SubscriptionUpdateSerializer,
        responses={
            200: SubscriptionSerializer,
            409: codes(invalid_transition=INVALID_TRANSITION, currency_mismatch=CURRENCY_MISMATCH),
        },
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
        summary="Cancel a subscription",
        description="With `at_period_end: true` (the default) the subscription stays "
        "`active` until the end of its current period (`cancel_at_period_end` is set), "
        "then becomes `canceled`; ReactivateSubscription undoes it until then. With "
        "`at_period_end: false` it is `terminated` now and the period so far is invoiced. "
        "A `pending` subscription is `canceled` at once.",
        request=CancelSerializer,
        responses={
            200: SubscriptionSerializer,
            409: codes(
                invalid_transition="Already canceled or terminated, or (with "
                "`at_period_end: true`) already canceling; `detail` names the state."
            ),
        },
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
        operation_id="ReactivateSubscription",
        summary="Reactivate a subscription",
        description="Undoes a cancellation scheduled for the period end, or restarts a "
        "`canceled` or `terminated` subscription (same `external_id`) with a new period "
        "from now.",
        request=None,
        responses={
            200: SubscriptionSerializer,
            409: codes(
                invalid_transition="Neither canceling nor ended (e.g. `active` or "
                "`pending`); `detail` names the state.",
                currency_mismatch="The customer's currency is no longer the plan's.",
            ),
        },
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def reactivate(self, request, external_id=None):
        subscription = services.subscription_reactivate(subscription=self.get_object())
        return Response(self.get_serializer(subscription).data)
