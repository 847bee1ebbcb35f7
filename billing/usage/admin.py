from django.contrib import admin

from billing.usage.forwarding import FORWARDING
from billing.usage.models import UsageForwardingRun
from core.admin_mixins import ReadOnlyAdminMixin
from core.queue_admin import QueueAdminMixin, UnfinishedForFilter


@admin.register(UsageForwardingRun)
class UsageForwardingRunAdmin(QueueAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Runs that send pending usage to Lago; a failed one is retried with *Retry now*
    (what is left to send is the records' `lago_status`, not the run)."""

    queue = FORWARDING
    list_display = [
        "id",
        "status",
        "attempts",
        "unfinished_for",
        "available_at",
        "short_error",
        "created_at",
        "processed_at",
    ]
    list_filter = [UnfinishedForFilter, "status"]
    search_fields = ["request_id"]
    readonly_fields = [f.name for f in UsageForwardingRun._meta.fields]
    ordering = ["-id"]
    actions = ["retry"]
    show_full_result_count = False
