"""Who changed billing data: pghistory records every change; this adds who and why."""

import pghistory
from django.conf import settings
from pghistory.middleware import HistoryMiddleware


class AuditContextMiddleware(HistoryMiddleware):
    """Staff in the admin are named by user; API callers by their key (see core.auth).

    Paths under AUDIT_UNTRACKED_PATHS write no audited table, so they run without a
    context: pghistory would otherwise prefix each of their statements with two
    set_config calls and a JSON dump, for rows no trigger writes."""

    def __call__(self, request):
        if request.path.startswith(settings.AUDIT_UNTRACKED_PATHS):
            return self.get_response(request)
        return super().__call__(request)

    def get_context(self, request):
        context = super().get_context(request)
        context["request_id"] = getattr(request, "request_id", None)
        return context


def audited(*, table: str | None = None):
    """Record every insert, change and deletion of a model's rows (who, when, what): the
    audit trail of billing data. `updated_at` alone is not a change.

    `table` keeps the event table's name when a model moved to another app, so its
    history stays where it was."""
    return pghistory.track(
        pghistory.InsertEvent(),
        pghistory.UpdateEvent(condition=pghistory.AnyChange(exclude_auto=True)),
        pghistory.DeleteEvent(),
        meta={"db_table": table} if table else None,
    )
