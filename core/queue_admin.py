"""The admin side of core.queue: find work that never completes, and retry it.

A model admin over a queue's table sets `queue` (its RetryQueue) and mixes in
`QueueAdminMixin`; its list can then filter rows unfinished for too long
(`UnfinishedForFilter`), show how long each has been unfinished, and offer *Retry now*
(staff's retry, one row at a time).
"""

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.utils import timezone

from core.admin_actions import run_each
from core.admin_mixins import has_model_permission
from core.queue import RetryQueue

# Choices of the filter: a sync is usually done in seconds; an outage keeps it for hours.
UNFINISHED_FOR = {
    "15m": ("more than 15 minutes", timedelta(minutes=15)),
    "1h": ("more than 1 hour", timedelta(hours=1)),
    "1d": ("more than 1 day", timedelta(days=1)),
}


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days"


class UnfinishedForFilter(admin.SimpleListFilter):
    """Rows still waiting or running this long after they were created."""

    title = "unfinished for"
    parameter_name = "unfinished_for"

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in UNFINISHED_FOR.items()]

    def __init__(self, request, params, model, model_admin):
        self.queue: RetryQueue[Any] = model_admin.queue
        super().__init__(request, params, model, model_admin)

    def queryset(self, request, queryset):
        choice = UNFINISHED_FOR.get(self.value() or "")
        if choice is None:
            return queryset
        return queryset.filter(
            status__in=[self.queue.waiting, self.queue.running],
            **{f"{self.queue.created_field}__lt": timezone.now() - choice[1]},
        )


class QueueAdminMixin:
    """For a queue's ModelAdmin, which sets `queue` and lists `retry` in its actions."""

    queue: RetryQueue[Any]

    @admin.display(description="Unfinished for")
    def unfinished_for(self, obj) -> str:
        if obj.status not in (self.queue.waiting, self.queue.running):
            return ""
        return _age(timezone.now() - getattr(obj, self.queue.created_field))

    @admin.display(description="Last error")
    def short_error(self, obj) -> str:
        return obj.last_error[:120]

    def has_retry_permission(self, request) -> bool:
        # `retry_<model>` in the queue model's Meta: a retry calls the provider again.
        model = self.queue.model
        return has_model_permission(request, model, f"retry_{model._meta.model_name}")

    @admin.action(description="Retry now", permissions=["retry"])
    def retry(self, request, queryset):
        run_each(
            request,
            queryset.order_by("pk"),
            self.queue.retry,
            done="queued again",
            noun=f"{queryset.model._meta.verbose_name}(s)",
            # By id: the row's own description names the status it had before the retry.
            describe=lambda row: f"#{row.pk}",
        )
