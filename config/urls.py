from django.contrib import admin
from django.urls import include, path
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
