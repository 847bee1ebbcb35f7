import json
from typing import ClassVar

from django.contrib import admin, messages
from django.utils.html import format_html

from core.admin_actions import run_each
from core.admin_detail_actions import DetailActionsMixin
from core.admin_mixins import ReadOnlyAdminMixin, has_model_permission
from core.queue_admin import UnfinishedForFilter
from webhooks.models import ObjectVersion, UsageEventError, WebhookEvent
from webhooks.services import WEBHOOKS, webhook_event_replay


@admin.register(WebhookEvent)
class WebhookEventAdmin(DetailActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    queue = WEBHOOKS
    detail_actions = [("replay", "Replay…", False)]

    def detail_action_summary(self, action: str, obj: WebhookEvent) -> str:
        return (
            f"the stored {obj.provider} event {obj.type} is processed again by its handler. "
            "Handlers apply an event once: what it already did (a payment settled, a refund "
            "recorded) is not done twice, and an event older than what was applied is skipped."
        )

    list_display = [
        "received_at",
        "provider",
        "type",
        "status",
        "attempts",
        "object_id",
        "customer",
        "note",
        "short_error",
    ]
    list_filter = [UnfinishedForFilter, "status", "provider", "type"]
    search_fields = ["event_id", "object_id", "customer__external_id"]
    date_hierarchy = "received_at"
    show_full_result_count = False
    list_select_related = ["customer"]
    actions = ["replay"]
    fields: ClassVar[tuple[str, ...]] = (
        "provider",
        "event_id",
        "type",
        "status",
        "attempts",
        "note",
        "last_error",
        "received_at",
        "provider_created_at",
        "available_at",
        "processed_at",
        "object_id",
        "customer",
        "related",
        "headers",
        "request_id",
        "payload",
    )
    readonly_fields = fields

    def has_replay_permission(self, request) -> bool:
        # A replay applies the event again (a card, a payment, an invoice status).
        return has_model_permission(request, WebhookEvent, "replay_webhookevent")

    @admin.display(description="Last error")
    def short_error(self, obj: WebhookEvent) -> str:
        return obj.last_error[:100]

    @admin.display(description="Payload")
    def payload(self, obj: WebhookEvent) -> str:
        try:
            pretty = json.dumps(json.loads(obj.body), indent=2, sort_keys=True)
        except ValueError:
            pretty = obj.body
        return format_html('<pre style="white-space: pre-wrap; max-height: 40em">{}</pre>', pretty)

    @admin.action(description="Replay processing from the stored body", permissions=["replay"])
    def replay(self, request, queryset):
        replayed = run_each(
            request,
            queryset.order_by("received_at"),
            lambda event: webhook_event_replay(event=event),
            done="replayed",
            noun="event(s)",
            describe=lambda event: f"{event.provider} {event.type} {event.event_id}",
            # Processing reads the provider before its own transaction, under locks held
            # until that commits: it must not run inside one of ours.
            atomic=False,
        )
        results: dict[str, int] = {}
        for _, outcome in replayed:
            results[outcome] = results.get(outcome, 0) + 1
        if results:
            summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(results.items()))
            messages.info(request, f"Replayed {len(replayed)} event(s): {summary}.")


@admin.register(UsageEventError)
class UsageEventErrorAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Usage events Lago could not use: the calling service must fix and resend them."""

    list_display = ["created_at", "transaction_id", "error", "webhook_event"]
    list_filter = ["error"]
    search_fields = ["transaction_id"]
    readonly_fields = ["created_at", "transaction_id", "error", "webhook_event"]


@admin.register(ObjectVersion)
class ObjectVersionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["provider", "object_type", "object_id", "version_at", "rank", "event"]
    list_filter = ["provider", "object_type"]
    search_fields = ["object_id"]
