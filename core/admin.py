from django.contrib import admin, messages
from django.utils import timezone

from core.admin_mixins import ReadOnlyAdminMixin
from core.models import ApiKey, IdempotencyKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "read_only", "is_active", "last_used_at", "created_at"]
    list_filter = ["read_only", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "last_used_at", "created_at", "revoked_at"]
    fields = ["name", "read_only", "prefix", "last_used_at", "created_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(boolean=True)
    def is_active(self, obj: ApiKey) -> bool:
        return obj.is_active

    def save_model(self, request, obj, form, change):
        raw_key = None if change else obj.set_new_key()
        super().save_model(request, obj, form, change)
        if raw_key:
            # The only time the key is visible: it is not stored, only its hash.
            messages.warning(request, f"New API key for '{obj.name}': {raw_key} (copy it now)")

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        messages.success(request, f"Revoked {count} key(s).")

    def has_delete_permission(self, request, obj=None) -> bool:
        # Revoke instead, so audit rows keep naming the key.
        return False


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["key", "api_key", "status", "response_status", "created_at"]
    list_filter = ["status"]
    search_fields = ["key"]
