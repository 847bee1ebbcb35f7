class ReadOnlyAdminMixin:
    """For records written by the system (events, outbox rows, mirrors): staff read them
    and act through explicit actions, never by editing or deleting rows."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def has_model_permission(request, model, codename: str) -> bool:
    """One of the model's own permissions (declared in its Meta `permissions`), so that an
    action with consequences (a Stripe detach, a termination, a replay) needs that very
    permission, not merely the view or change ones every staff role gets."""
    return request.user.has_perm(f"{model._meta.app_label}.{codename}")
