"""Coupons in the back office: the catalog (created through the API or here, terminated
by an action) and applying one to a customer, behind `coupons.apply_coupon`, through the
same service as the API's."""

from django import forms
from django.contrib import admin

from billing.coupons import services
from billing.coupons.models import AppliedCoupon, Coupon
from core.admin_actions import run_each
from core.admin_mixins import ReadOnlyAdminMixin, has_model_permission
from core.exceptions import DomainError


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "coupon_type",
        "amount_cents",
        "amount_currency",
        "percentage_rate",
        "frequency",
        "frequency_duration",
        "expiration_at",
        "redemption_limit",
        "status",
    ]
    list_filter = ["status", "coupon_type", "frequency"]
    search_fields = ["code", "name"]
    actions = ["terminate"]
    readonly_fields = ["status", "terminated_at"]

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        data = {f: form.cleaned_data.get(f) for f in form.cleaned_data}
        created = services.coupon_create(**{k: v for k, v in data.items() if v is not None})
        obj.pk = created.pk

    @admin.action(description="Terminate (stops applying)", permissions=["change"])
    def terminate(self, request, queryset):
        run_each(
            request,
            queryset,
            lambda coupon: services.coupon_terminate(coupon=coupon),
            done="terminated",
            noun="coupon(s)",
        )


class ApplyCouponForm(forms.ModelForm):
    class Meta:
        model = AppliedCoupon
        fields = ["customer", "coupon", "amount_cents", "percentage_rate"]

    def clean(self):
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            self.applied = services.coupon_apply(
                customer=data["customer"],
                coupon=data["coupon"],
                amount_cents=data.get("amount_cents"),
                percentage_rate=data.get("percentage_rate"),
            )
        except DomainError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data


@admin.register(AppliedCoupon)
class AppliedCouponAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "coupon",
        "customer",
        "frequency",
        "frequency_duration_remaining",
        "amount_cents_remaining",
        "status",
        "created_at",
    ]
    list_filter = ["status", "frequency"]
    search_fields = ["customer__external_id", "coupon__code"]
    list_select_related = ["coupon", "customer"]
    autocomplete_fields = ["customer", "coupon"]
    actions = ["terminate"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApplyCouponForm
        return super().get_form(request, obj, change=change, **kwargs)

    def has_add_permission(self, request, obj=None) -> bool:
        return has_model_permission(request, Coupon, "apply_coupon")

    def save_model(self, request, obj, form, change) -> None:
        # Applied in the form's clean(), by the service, under the coupon's lock.
        obj.pk = form.applied.pk

    def save_related(self, request, form, formsets, change) -> None:
        return None

    def has_terminate_permission(self, request) -> bool:
        return has_model_permission(request, Coupon, "apply_coupon")

    @admin.action(description="Remove from the customer", permissions=["terminate"])
    def terminate(self, request, queryset):
        run_each(
            request,
            queryset,
            lambda applied: services.applied_coupon_terminate(applied_coupon=applied),
            done="removed",
            noun="applied coupon(s)",
        )
