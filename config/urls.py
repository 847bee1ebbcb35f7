from django.contrib import admin
from django.urls import include, path, re_path
from django.views.defaults import bad_request, page_not_found, server_error
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import exceptions
from rest_framework.views import APIView

from backoffice import jobs
from backoffice.dashboard import dashboard
from core import health, metrics
from core.responses import error_response
from webhooks import views as webhooks

admin.site.site_header = "Billing back office"
admin.site.site_title = "Billing"


class _ApiNotFound(APIView):
    """Authenticated like every /api/ route (401 without a key), then 404."""

    schema = None  # not an operation: kept out of the OpenAPI schema

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raise exceptions.NotFound()


urlpatterns = [
    path("api/v1/", include("config.api")),
    path("webhooks/stripe/", webhooks.stripe_webhook, name="webhook-stripe"),
    path("webhooks/lago/", webhooks.lago_webhook, name="webhook-lago"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("health/live/", health.live, name="health-live"),
    path("health/ready/", health.ready, name="health-ready"),
    path("metrics", metrics.metrics_view, name="metrics"),
    # The admin's first page is the dashboard; "admin:index" (every breadcrumb's Home)
    # resolves to this same URL.
    path("admin/", admin.site.admin_view(dashboard), name="dashboard"),
    path("admin/billing-run/", admin.site.admin_view(jobs.billing_run_start), name="billing_run"),
    path(
        "admin/billing-run/<str:job_id>/",
        admin.site.admin_view(jobs.billing_run_progress),
        name="billing_run_progress",
    ),
    path("admin/", admin.site.urls),
    # Last: any other /api/ path is the API's 404 in its error shape. A route, not only
    # handler404, because with DEBUG on Django answers an unmatched URL with its HTML page
    # listing every pattern, and handler404 is never called.
    re_path(r"^api/", _ApiNotFound.as_view(), name="api-404"),
]


def _not_found(request, exception=None):
    """API callers get the one error shape; people browsing get Django's page."""
    if request.path.startswith("/api/"):
        return error_response(404, "not_found", "Not found.")
    return page_not_found(request, exception)


def _machine_facing(request) -> bool:
    return request.path.startswith(("/api/", "/webhooks/"))


def _bad_request(request, exception=None):
    """Django's own refusals (a disallowed Host, a SuspiciousOperation) in the error shape
    for API and webhook callers."""
    if _machine_facing(request):
        return error_response(400, "bad_request", "The request cannot be read.")
    return bad_request(request, exception)


def _server_error(request):
    if request.path.startswith("/api/"):
        return error_response(500, "error", "A server error occurred.", kind="server_error")
    return server_error(request)


handler400 = _bad_request
handler404 = _not_found
handler500 = _server_error
