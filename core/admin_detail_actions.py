"""Actions where the object is: an admin's bulk actions offered as buttons on an object's
own page, each through a confirmation that says what will happen before it happens.

A ModelAdmin lists `detail_actions` as (action name, button label, confirms itself). A
button shows when the user may run the action (Django's `get_actions` already dropped the
ones the user lacks the permission for) and `detail_action_offered` says the object's
state lets it do something. Its page runs the very same action method as the list, on
that one object, so the services, permissions and messages are the list's:

- an action that confirms itself (it returns its own page unless "apply" was posted:
  the invoice actions, a plan change's form) is called on GET for that page;
- any other is never called on GET: a generic confirmation (`detail_action_summary`
  says what it does) posts "apply" back, and only then is the action run.

The model's change_form template includes admin/includes/detail_actions.html.
"""

from typing import Any, ClassVar

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse


class DetailActionsMixin:
    detail_actions: ClassVar[list[tuple[str, str, bool]]] = []

    def detail_action_offered(self, action: str, obj: Any) -> bool:
        return True

    def detail_action_summary(self, action: str, obj: Any) -> str:
        return ""

    def _detail_name(self, suffix: str) -> str:
        opts = self.model._meta  # type: ignore[attr-defined]
        return f"{opts.app_label}_{opts.model_name}_{suffix}"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        extra = dict(extra_context or {})
        if obj is not None:
            allowed = self.get_actions(request)  # type: ignore[attr-defined]
            extra["detail_actions"] = [
                (label, reverse(f"admin:{self._detail_name('do')}", args=[obj.pk, name]))
                for name, label, _ in self.detail_actions
                if name in allowed and self.detail_action_offered(name, obj)
            ]
        return super().change_view(request, object_id, form_url, extra)  # type: ignore[misc]

    def get_urls(self):
        site = self.admin_site  # type: ignore[attr-defined]
        return [
            path(
                "<path:object_id>/do/<str:action>/",
                site.admin_view(self.detail_action_view),
                name=self._detail_name("do"),
            ),
            *super().get_urls(),  # type: ignore[misc]
        ]

    def detail_action_view(self, request, object_id, action):
        obj = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if obj is None:
            raise Http404("No such object.")
        entry = self.get_actions(request).get(action)  # type: ignore[attr-defined]
        confirms_itself = {name: own for name, _, own in self.detail_actions}
        if entry is None or action not in confirms_itself:
            raise PermissionDenied  # not an action here, or not one this user may run
        queryset = self.model.objects.filter(pk=obj.pk)  # type: ignore[attr-defined]
        back = reverse(f"admin:{self._detail_name('change')}", args=[obj.pk])
        confirmed = request.method == "POST" and "apply" in request.POST
        if confirmed or confirms_itself[action]:
            page = entry[0](self, request, queryset)
            return page if page is not None else HttpResponseRedirect(back)
        return TemplateResponse(
            request,
            "admin/confirm_detail_action.html",
            {
                **self.admin_site.each_context(request),  # type: ignore[attr-defined]
                "title": entry[2],
                "object": obj,
                "summary": self.detail_action_summary(action, obj),
                "back": back,
                "opts": self.model._meta,  # type: ignore[attr-defined]
            },
        )
