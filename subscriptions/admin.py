from typing import Any, ClassVar

from django import forms
from django.contrib import admin
from django.shortcuts import render

from core.admin_actions import run_each
from core.admin_detail_actions import DetailActionsMixin
from core.admin_forms import ServiceAdminMixin, ServiceModelForm
from core.admin_mixins import has_model_permission
from subscriptions import catalog, services
from subscriptions.models import BillableMetric, Charge, Plan, Subscription, SubscriptionPhase

# The model's validators and clean() are the API's rules (ISO currency, fee and trial
# bounds, charge properties, a field unless counting); a ModelForm applies them, and every
# save goes through the services, which apply them again under their locks.
METRIC_FIELDS: tuple[str, ...] = ("name", "description", "aggregation", "field_name")
METRIC_FIELDS += ("negative_values_allowed", "filters", "recurring", "weighted_interval")
PLAN_FIELDS = (
    "name",
    "description",
    "minimum_commitment_invoice_display_name",
    *catalog.PLAN_PRICING_FIELDS,
)


@admin.register(BillableMetric)
class BillableMetricAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = ServiceModelForm
    list_display = [
        "code",
        "name",
        "aggregation",
        "field_name",
        "negative_values_allowed",
        "lago_id",
    ]
    list_filter = ["aggregation", "negative_values_allowed"]
    search_fields = ["code", "name"]
    readonly_fields = ["lago_id", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # The code is the metric's address in the API and in usage events: fixed.
            fields.append("code")
            if catalog.metric_in_use(obj):
                # Frozen under running subscriptions, here as in the API.
                fields += ["aggregation", "field_name", "filters", "recurring", "weighted_interval"]
        return fields

    def save_model(self, request, obj, form, change):
        fields = {
            name: form.cleaned_data[name] for name in METRIC_FIELDS if name in form.cleaned_data
        }
        if change:
            catalog.metric_update(metric=obj, **fields)
        else:
            obj.pk = catalog.metric_create(code=form.cleaned_data["code"], **fields).pk


class ChargeInline(admin.TabularInline):
    model = Charge
    extra = 0
    fields = ["metric", "charge_model", "properties", "filters", "prorated", "lago_id"]
    readonly_fields = ["lago_id"]


class FrozenChargeInline(ChargeInline):
    """A plan's charges once it is in use: prices are frozen, here as in the API."""

    readonly_fields = ["metric", "charge_model", "properties", "filters", "prorated", "lago_id"]
    can_delete = False
    max_num = 0


@admin.register(Plan)
class PlanAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = ServiceModelForm
    list_display = [
        "code",
        "name",
        "interval",
        "amount_cents",
        "currency",
        "pay_in_advance",
        "trial_days",
        "in_use",
    ]
    list_filter = ["interval", "currency"]
    search_fields = ["code", "name"]
    readonly_fields = ["lago_id", "created_at", "updated_at"]
    inlines = [ChargeInline]

    @admin.display(boolean=True, description="Subscribed")
    def in_use(self, obj: Plan) -> bool:
        return catalog.plan_in_use(obj)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and catalog.plan_in_use(obj):
            # Prices are frozen under running subscriptions, here as in the API.
            fields += ["code", *catalog.PLAN_PRICING_FIELDS]
        elif obj is not None:
            fields.append("code")
        return fields

    def get_inlines(self, request, obj=None):
        if obj is not None and catalog.plan_in_use(obj):
            return [FrozenChargeInline]
        return super().get_inlines(request, obj)

    def save_model(self, request, obj, form, change):
        # Nothing yet: the plan and its charges are one service call (save_related), as
        # in the API, once the charges' forms are known.
        pass

    def save_related(self, request, form, formsets, change):
        fields = {
            name: form.cleaned_data[name] for name in PLAN_FIELDS if name in form.cleaned_data
        }
        charges = self._charges(formsets)
        if change:
            plan = catalog.plan_update(plan=form.instance, charges=charges, **fields)
        else:
            plan = catalog.plan_create(code=form.cleaned_data["code"], charges=charges, **fields)
        form.instance.pk = plan.pk
        form.instance.refresh_from_db()

    @staticmethod
    def _charges(formsets) -> list[catalog.ChargeSpec] | None:
        """The charges the inline's forms leave, or None when they are frozen (not sent)."""
        editable = [
            formset
            for formset in formsets
            if formset.model is Charge and "charge_model" in formset.form.base_fields
        ]
        if not editable:
            return None
        charges: list[catalog.ChargeSpec] = []
        for formset in editable:
            # commit=False writes nothing; it gives the admin's change message its lists.
            formset.save(commit=False)
            for charge_form in formset.forms:
                data: dict[str, Any] = charge_form.cleaned_data
                if not data or data.get("DELETE"):
                    continue
                charges.append(
                    {
                        "metric": data["metric"],
                        "charge_model": data["charge_model"],
                        "properties": data["properties"],
                        "filters": data.get("filters") or [],
                        "prorated": bool(data.get("prorated")),
                    }
                )
        return charges


class PhaseInline(admin.TabularInline):
    model = SubscriptionPhase
    fields: ClassVar[tuple[str, ...]] = ("plan", "started_at", "ended_at", "reason", "overrides")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("plan")  # each row's label

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ChangePlanForm(forms.Form):
    plan = forms.ModelChoiceField(queryset=Plan.objects.all())


@admin.register(Subscription)
class SubscriptionAdmin(DetailActionsMixin, admin.ModelAdmin):
    list_display = [
        "external_id",
        "customer",
        "plan",
        "status",
        "period",
        "cancel_at_period_end",
        "next_plan",
        "created_at",
    ]
    list_filter = ["status", "cancel_at_period_end", "billing_time", "plan"]
    search_fields = ["external_id", "customer__external_id"]
    list_select_related = ["customer", "plan", "next_plan"]
    readonly_fields = [f.name for f in Subscription._meta.fields]
    inlines = [PhaseInline]
    actions = ["cancel_at_period_end_action", "terminate_now", "reactivate", "change_plan"]
    detail_actions = [
        ("change_plan", "Change plan…", True),
        ("cancel_at_period_end_action", "Cancel at period end…", False),
        ("terminate_now", "Terminate now…", False),
        ("reactivate", "Reactivate…", False),
    ]
    show_full_result_count = False

    def detail_action_offered(self, action: str, obj: Subscription) -> bool:
        live = obj.status in (Subscription.Status.ACTIVE, Subscription.Status.PENDING)
        if action == "reactivate":
            return live and obj.cancel_at_period_end
        if action == "cancel_at_period_end_action":
            return obj.status == Subscription.Status.ACTIVE and not obj.cancel_at_period_end
        return live

    def detail_action_summary(self, action: str, obj: Subscription) -> str:
        end = f"{obj.current_period_end:%Y-%m-%d %H:%M}" if obj.current_period_end else "—"
        return {
            "terminate_now": (
                "the subscription ends now; its current period is cut today and billed on a "
                "final invoice at once: the plan's fee for the days used (whole UTC days, as "
                "Lago counts them) and the usage recorded so far. Nothing is billed after."
            ),
            "cancel_at_period_end_action": (
                f"it keeps running until the end of its period ({end}); that period is "
                "billed as usual then, and nothing after. Nothing is billed now."
            ),
            "reactivate": (
                f"the cancellation at period end is withdrawn: the subscription renews at {end} "
                "and is billed as before."
            ),
        }.get(action, "")

    @admin.display(description="Current period")
    def period(self, obj: Subscription) -> str:
        if not obj.current_period_start:
            return "—"
        return f"{obj.current_period_start:%Y-%m-%d} → {obj.current_period_end:%Y-%m-%d}"

    def _each(self, request, queryset, service, done: str, **kwargs) -> None:
        run_each(
            request,
            queryset,
            lambda subscription: service(subscription=subscription, **kwargs),
            done=done,
            refused="not done",
        )

    @admin.action(description="Cancel at period end", permissions=["cancel"])
    def cancel_at_period_end_action(self, request, queryset):
        self._each(
            request,
            queryset,
            services.subscription_cancel,
            "cancels at period end",
            at_period_end=True,
        )

    @admin.action(description="Cancel now (terminate)", permissions=["cancel"])
    def terminate_now(self, request, queryset):
        self._each(
            request, queryset, services.subscription_cancel, "terminated", at_period_end=False
        )

    @admin.action(description="Reactivate", permissions=["reactivate"])
    def reactivate(self, request, queryset):
        self._each(request, queryset, services.subscription_reactivate, "reactivated")

    @admin.action(description="Change plan…", permissions=["change_plan"])
    def change_plan(self, request, queryset):
        form = ChangePlanForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            self._each(
                request,
                queryset,
                services.subscription_update,
                "plan changed (an upgrade now, a downgrade at period end)",
                plan=form.cleaned_data["plan"],
            )
            return None
        return render(
            request,
            "admin/subscriptions/change_plan.html",
            {
                "form": form,
                "subscriptions": queryset,
                "opts": self.model._meta,
                "action": "change_plan",
                **self.admin_site.each_context(request),
            },
        )

    # Each action needs its own permission: Django drops an action the user may not run
    # from the list and refuses it when posted anyway (the plan form posts back through the
    # same action, so it is refused too).
    def has_cancel_permission(self, request) -> bool:
        return has_model_permission(request, Subscription, "cancel_subscription")

    def has_reactivate_permission(self, request) -> bool:
        return has_model_permission(request, Subscription, "reactivate_subscription")

    def has_change_plan_permission(self, request) -> bool:
        return has_model_permission(request, Subscription, "change_subscription_plan")

    def has_add_permission(self, request) -> bool:
        # Subscriptions are created by the calling services through the API.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
