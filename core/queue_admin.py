"""The admin side of core.queue: staff's *Retry now*, one row at a time.

A model admin over a queue's table sets `queue` (its RetryQueue), mixes in
`QueueAdminMixin` and lists `retry` in its actions.
"""

from typing import Any

from django.contrib import admin

from core.admin_actions import run_each
from core.queue import RetryQueue


class QueueAdminMixin:
    """For a queue's ModelAdmin, which sets `queue` and lists `retry` in its actions."""

    queue: RetryQueue[Any]

    @admin.display(description="Last error")
    def short_error(self, obj) -> str:
        return obj.last_error[:120]

    @admin.action(description="Retry now")
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
