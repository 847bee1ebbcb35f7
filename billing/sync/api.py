"""The `sync` block of objects that providers mirror, one query per page of a list."""

from typing import TYPE_CHECKING, Any

from rest_framework import serializers

from billing.sync.selectors import sync_states

if TYPE_CHECKING:  # DRF's generic view, for the type checker only (as in core.views)
    from rest_framework.generics import GenericAPIView as _GenericAPIViewBase
else:
    _GenericAPIViewBase = object


class SyncProviderSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["synced", "pending", "failed", "disabled"])
    error = serializers.CharField(allow_null=True)


class SyncStatesMixin(_GenericAPIViewBase):
    """For viewsets: compute the sync state of a whole list page at once and hand it to
    the serializer (`sync_state_of`), instead of one outbox query per object."""

    sync_remote_ids: dict[str, str] = {}

    def paginate_queryset(self, queryset: Any) -> Any:
        self._page = super().paginate_queryset(queryset)
        return self._page

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        page = getattr(self, "_page", None)
        if page is not None:
            context["sync_states"] = sync_states(
                object_type=self.get_queryset().model._meta.label_lower,
                objects=page,
                remote_ids=self.sync_remote_ids,
            )
        return context


def sync_state_of(serializer, obj, remote_ids: dict[str, str]) -> dict:
    """The object's sync block: from the page's precomputed states, else on its own."""
    states = serializer.context.get("sync_states") or {}
    if str(obj.pk) not in states:
        states = sync_states(
            object_type=obj._meta.label_lower, objects=[obj], remote_ids=remote_ids
        )
    return states[str(obj.pk)]
