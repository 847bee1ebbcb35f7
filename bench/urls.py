"""The production URLconf plus benchmark-only baselines (ROOT_URLCONF of bench.settings)."""

from django.urls import include, path

from bench.views import bare_customer_create, bare_usage_record, bare_webhook_receive

urlpatterns = [
    path("bench/bare-customers/", bare_customer_create, name="bench-bare-customers"),
    path("bench/bare-webhook/", bare_webhook_receive, name="bench-bare-webhook"),
    path("bench/bare-usage/", bare_usage_record, name="bench-bare-usage"),
    path("", include("config.urls")),
]
