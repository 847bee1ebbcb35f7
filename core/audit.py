"""Who changed billing data: pghistory records every change; this adds who and why."""

from pghistory.middleware import HistoryMiddleware


class AuditContextMiddleware(HistoryMiddleware):
    """Staff in the admin are named by user; API callers by their key (see core.auth)."""

    def get_context(self, request):
        context = super().get_context(request)
        context["request_id"] = getattr(request, "request_id", None)
        return context
