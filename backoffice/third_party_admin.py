"""dj-stripe's and Celery beat's admin sections, read-only for everyone.

No role holds a permission on them, so only superusers (engineering) see them at all; and
even there they are to read: dj-stripe's tables mirror Stripe (a hand edit would be undone
by the next sync, or worse, believed), and the beat schedule is written by code
(config/celery.py) at start-up.
"""

from django.contrib import admin

READ_ONLY_APPS = ("djstripe", "django_celery_beat")


def _no(self, request, obj=None) -> bool:
    return False


def read_only() -> None:
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in READ_ONLY_APPS:
            continue
        cls = type(model_admin)
        cls.has_add_permission = _no  # type: ignore[method-assign]
        cls.has_change_permission = _no  # type: ignore[method-assign]
        cls.has_delete_permission = _no  # type: ignore[method-assign]
        # Their bulk actions write (dj-stripe's "sync from Stripe", beat's enable/run).
        model_admin.actions = []
