from django.conf import settings
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from core.admin_mixins import ReadOnlyAdminMixin, has_model_permission
from core.auth import forget_api_keys
from core.models import ApiKey, IdempotencyKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "read_only", "is_active", "last_used_at", "created_at"]
    list_filter = ["read_only", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "last_used_at", "created_at", "revoked_at"]
    fields = ["name", "read_only", "prefix", "last_used_at", "created_at", "revoked_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # Fixed at creation: a change permission must not turn a reader into a writer
            # (a key that should write is a new key). The hash is never a form field.
            fields.append("read_only")
        return fields

    @admin.display(boolean=True)
    def is_active(self, obj: ApiKey) -> bool:
        return obj.is_active

    def save_model(self, request, obj, form, change):
        if not change:
            # Kept on this request only, for response_add: only the hash is stored.
            request.new_api_key = obj.set_new_key()
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        raw_key = getattr(request, "new_api_key", None)
        if raw_key is None:
            return super().response_add(request, obj, post_url_continue)
        # The only time the key is visible, on this page itself: not through
        # django.contrib.messages, whose cookie would carry it to the next request.
        response = TemplateResponse(
            request,
            "admin/core/apikey/created.html",
            {
                **self.admin_site.each_context(request),
                "title": "API key created",
                "opts": self.model._meta,
                "key": obj,
                "raw_key": raw_key,
            },
        )
        add_never_cache_headers(response)
        return response

    def has_revoke_permission(self, request) -> bool:
        return has_model_permission(request, ApiKey, "revoke_apikey")

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        forget_api_keys()  # update() sends no signal
        messages.success(
            request,
            f"Revoked {count} key(s). Every web process refuses them within "
            f"{settings.API_KEY_CACHE_SECONDS} seconds (each keeps a key it has read that long).",
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        # Revoke instead, so audit rows keep naming the key.
        return False


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["key", "api_key", "status", "response_status", "created_at"]
    list_filter = ["status"]
    search_fields = ["key"]
