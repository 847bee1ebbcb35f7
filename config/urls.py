from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found, server_error
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import health, metrics
from webhooks import views as webhooks

admin.site.site_header = "Billing back office"
admin.site.site_title = "Billing"

urlpatterns = [
    path("api/v1/", include("config.api")),
    path("webhooks/stripe/", webhooks.stripe_webhook, name="webhook-stripe"),
    path("webhooks/lago/", webhooks.lago_webhook, name="webhook-lago"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("health/live/", health.live, name="health-live"),
    path("health/ready/", health.ready, name="health-ready"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
]


def _not_found(request, exception=None):
    """API callers get the one error shape; people browsing get Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {
                "type": "client_error",
                "errors": [{"code": "not_found", "detail": "Not found.", "attr": None}],
            },
            status=404,
        )
    return page_not_found(request, exception)


def _server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse(
            {
                "type": "server_error",
                "errors": [{"code": "error", "detail": "A server error occurred.", "attr": None}],
            },
            status=500,
        )
    return server_error(request)


handler404 = _not_found
handler500 = _server_error
