from django.contrib import admin, messages
from django.db import transaction

from billing.sync import outbox
from billing.sync.models import OutboxMessage
from core.admin_mixins import ReadOnlyAdminMixin


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "provider",
        "action",
        "object_type",
        "object_id",
        "status",
        "attempts",
        "available_at",
        "short_error",
        "created_at",
    ]
    list_filter = ["status", "provider", "action"]
    search_fields = ["object_id", "request_id"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]
    actions = ["retry"]
    show_full_result_count = False

    @admin.display(description="Last error")
    def short_error(self, obj: OutboxMessage) -> str:
        return obj.last_error[:120]

    @admin.action(description="Retry now")
    def retry(self, request, queryset):
        retried = 0
        with transaction.atomic():
            for message in queryset.select_for_update().filter(
                status__in=[OutboxMessage.Status.FAILED, OutboxMessage.Status.PENDING]
            ):
                outbox.outbox_retry(message=message)
                retried += 1
        messages.success(request, f"Queued {retried} message(s) again.")
