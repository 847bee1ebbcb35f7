"""The production URLconf plus benchmark-only baselines (ROOT_URLCONF of bench.settings)."""

from django.urls import include, path

from bench.views import bare_customer_create

urlpatterns = [
    path("bench/bare-customers/", bare_customer_create, name="bench-bare-customers"),
    path("", include("config.urls")),
]
