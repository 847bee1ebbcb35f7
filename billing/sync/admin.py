from django.contrib import admin

from billing.sync.models import OutboxMessage
from billing.sync.outbox import OUTBOX
from core.admin_mixins import ReadOnlyAdminMixin
from core.queue_admin import QueueAdminMixin, UnfinishedForFilter


@admin.register(OutboxMessage)
class OutboxMessageAdmin(QueueAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    queue = OUTBOX
    list_display = [
        "id",
        "provider",
        "action",
        "object_type",
        "object_id",
        "status",
        "attempts",
        "unfinished_for",
        "available_at",
        "short_error",
        "created_at",
    ]
    # A sync that never completes shows under "unfinished for more than 1 hour".
    list_filter = [UnfinishedForFilter, "status", "provider", "action"]
    search_fields = ["object_id", "request_id"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]
    actions = ["retry"]
    show_full_result_count = False
