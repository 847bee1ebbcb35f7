"""The one router of the API: every viewset is registered here, under /api/v1/."""

from django.urls import path, re_path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.views import APIView

from billing.coupons.api.views import AppliedCouponViewSet, CouponViewSet
from billing.invoicing.api.add_ons import AddOnViewSet
from billing.invoicing.api.usage import SubscriptionUsageViewSet
from billing.payments.api.credit_notes import CreditNoteViewSet
from billing.payments.api.views import InvoiceViewSet
from billing.payments.api.wallets import CustomerWalletView, WalletViewSet
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
router.register("credit_notes", CreditNoteViewSet, basename="credit-note")
router.register("coupons", CouponViewSet, basename="coupon")
router.register("add_ons", AddOnViewSet, basename="add-on")
router.register("wallets", WalletViewSet, basename="wallet")
router.register("applied_coupons", AppliedCouponViewSet, basename="applied-coupon")


class ApiIndex(APIView):
    """GET /api/v1/: the resources of this version, each with its URL (key required, like
    every /api/ route). Written out rather than DRF's root view, whose browsable-API
    conventions (format suffixes, HTML) this API does not use."""

    @extend_schema(
        operation_id="ApiIndex",
        tags=["API index"],
        summary="List the API's resources",
        description="The resources of this API version, each with its URL. Useful to "
        "check that a key works.",
        responses=inline_serializer(
            "ApiIndex", {"resources": serializers.DictField(child=serializers.URLField())}
        ),
    )
    def get(self, request: Request) -> Response:
        base = request.build_absolute_uri("/api/v1/")
        resources = {prefix: f"{base}{prefix}/" for prefix, _, _ in router.registry}
        return Response({"resources": resources})


urlpatterns = [
    path("", ApiIndex.as_view(), name="api-index"),
    re_path(
        r"^subscriptions/(?P<external_id>[^/]+)/usage/$",
        SubscriptionUsageViewSet.as_view({"get": "retrieve"}),
        name="subscription-usage",
    ),
    re_path(
        r"^customers/(?P<external_id>[^/]+)/wallet/$",
        CustomerWalletView.as_view({"get": "retrieve"}),
        name="customer-wallet",
    ),
    *router.urls,
]
