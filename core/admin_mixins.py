class ReadOnlyAdminMixin:
    """For records written by the system (events, outbox rows, mirrors): staff read them
    and act through explicit actions, never by editing or deleting rows."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
