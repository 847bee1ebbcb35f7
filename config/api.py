"""The one router of the API: every viewset is registered here, under /api/v1/."""

from django.urls import re_path
from rest_framework.routers import DefaultRouter

from billing.invoicing.api.usage import SubscriptionUsageViewSet
from billing.payments.api.views import InvoiceViewSet
from billing.usage.api.views import UsageViewSet
from customers.api.views import CustomerViewSet
from subscriptions.api.views import BillableMetricViewSet, PlanViewSet, SubscriptionViewSet


class Router(DefaultRouter):
    include_root_view = False
    include_format_suffixes = False


router = Router()
router.register("customers", CustomerViewSet, basename="customer")
router.register("billable_metrics", BillableMetricViewSet, basename="billable-metric")
router.register("plans", PlanViewSet, basename="plan")
router.register("subscriptions", SubscriptionViewSet, basename="subscription")
router.register("usage", UsageViewSet, basename="usage")
router.register("invoices", InvoiceViewSet, basename="invoice")

urlpatterns = [
    re_path(
        r"^subscriptions/(?P<external_id>[^/]+)/usage/$",
        SubscriptionUsageViewSet.as_view({"get": "retrieve"}),
        name="subscription-usage",
    ),
    *router.urls,
]
