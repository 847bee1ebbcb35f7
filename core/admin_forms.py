"""Admin add/change forms that refuse what the API refuses, in the API's words.

The rules themselves live on the model fields (core.validators, which a ModelForm applies)
and in the services. A form built on `ServiceModelForm` also runs its service's checks
(`check_with_services`) once the model's validators passed, so a domain refusal (a
`DomainError`, or a service's ValidationError) shows on the form, by its field, and
nothing is saved.

`ServiceAdminMixin` covers the rest: a refusal raised while saving (the state changed
between the form's check and the service's locked one) rolls the whole save back, as the
admin's own transaction does, and is reported as a message instead of a server error.
"""

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpResponseRedirect

from core.exceptions import DomainError, error_message


class ServiceModelForm(forms.ModelForm):
    # ISO codes are taken in any case and stored upper case, as the API does.
    upper_case = ("currency", "country")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        assert cleaned is not None  # ModelForm.clean returns cleaned_data
        for name in self.upper_case:
            if isinstance(cleaned.get(name), str):
                cleaned[name] = cleaned[name].upper()
        return cleaned

    def check_with_services(self, cleaned: dict[str, Any]) -> None:
        """Call the service's own checks with the cleaned values; raise what it raises.
        It runs last, once the fields and the model's validators passed, so `self.instance`
        already carries the new values: a check compares with the stored row."""

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # the model's validators and constraints
        if self.errors:
            return  # each field says why; the service needs valid input
        try:
            self.check_with_services(self.cleaned_data)
        except DomainError as exc:
            self.add_error(exc.attr if exc.attr in self.fields else None, exc.detail)
        except ValidationError as exc:
            self.add_service_error(exc)

    def add_service_error(self, exc: ValidationError) -> None:
        """A service's ValidationError, its field errors on the form's fields where the form
        has them, the others above the form (add_error refuses unknown fields)."""
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc)
            return
        for field, errors in exc.error_dict.items():
            self.add_error(field if field in self.fields else None, errors)


class ServiceAdminMixin:
    """For a ModelAdmin whose saves go through a service."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc]
        except (DomainError, ValidationError) as exc:
            # The admin's transaction has rolled back: nothing of this save is kept.
            if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
                reason = "; ".join(
                    f"{'' if field == NON_FIELD_ERRORS else field + ': '}{' '.join(errors)}"
                    for field, errors in exc.message_dict.items()
                )
            else:
                reason = error_message(exc)
            messages.error(request, f"Not saved: {reason}")
            return HttpResponseRedirect(request.get_full_path())
