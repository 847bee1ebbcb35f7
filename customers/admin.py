from typing import ClassVar

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from billing.sync.selectors import sync_states
from core.admin_actions import run_each
from core.admin_forms import ServiceAdminMixin, ServiceModelForm
from core.admin_mixins import ReadOnlyAdminMixin, has_model_permission
from customers import services
from customers.models import Customer, PaymentMethod


class PaymentMethodInline(admin.TabularInline):
    model = PaymentMethod
    fields: ClassVar[tuple[str, ...]] = (
        "card",
        "exp",
        "billing_country",
        "is_default",
        "status",
        "created_at",
        "manage",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ["status", "-is_default", "-created_at"]

    @admin.display(description="Card")
    def card(self, obj: PaymentMethod) -> str:
        return str(obj)

    @admin.display(description="Expires")
    def exp(self, obj: PaymentMethod) -> str:
        return f"{obj.exp_month:02d}/{obj.exp_year}" if obj.exp_month and obj.exp_year else ""

    @admin.display(description="")
    def manage(self, obj: PaymentMethod) -> str:
        url = reverse("admin:customers_paymentmethod_changelist")
        return format_html('<a href="{}?id__exact={}">set default / remove</a>', url, obj.pk)

    def has_add_permission(self, request, obj=None) -> bool:
        # Cards are added by the customer through Stripe.js, never typed in here.
        return False


class CustomerForm(ServiceModelForm):
    """The API's rules: the model's validators (ISO codes, the external_id alphabet,
    storable metadata) and the service's own checks (a currency locked by what is priced
    in it)."""

    class Meta:
        model = Customer
        fields = "__all__"
        # Encrypted fields are text columns: one line each, as people type an address.
        widgets = {
            name: forms.TextInput(attrs={"size": 60})
            for name in ("address_line1", "city", "zipcode", "state", "tax_id")
        }

    def check_with_services(self, cleaned):
        if self.instance._state.adding:
            return  # a new customer: nothing stored to check against
        values = {name: cleaned[name] for name in services.UPDATABLE_FIELDS if name in cleaned}
        services.customer_check_update(customer=Customer.objects.get(pk=self.instance.pk), **values)


@admin.register(Customer)
class CustomerAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = CustomerForm
    inlines = [PaymentMethodInline]
    list_display = [
        "external_id",
        "name",
        "email",
        "country",
        "currency",
        "sync_state",
        "created_at",
    ]
    list_filter = ["country", "currency", "created_at"]
    search_fields = ["external_id", "name", "email", "stripe_customer_id"]
    readonly_fields = [
        "id",
        "stripe_customer_id",
        "lago_id",
        "sync_state",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["external_id", "name", "email", "currency", "metadata"]}),
        (
            "Billing address and tax (encrypted)",
            {
                "fields": [
                    "address_line1",
                    "city",
                    "zipcode",
                    "state",
                    "country",
                    "tax_id",
                    "tax_rate",
                ],
            },
        ),
        ("Providers", {"fields": ["stripe_customer_id", "lago_id", "sync_state"]}),
        ("Record", {"fields": ["id", "created_at", "updated_at"]}),
    ]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("external_id")
        return fields

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        self._sync_states = sync_states(
            object_type="customers.customer",
            objects=changelist.result_list,
            remote_ids={"stripe": "stripe_customer_id", "lago": "lago_id"},
        )
        return changelist

    @admin.display(description="Sync")
    def sync_state(self, obj: Customer) -> str:
        states = getattr(self, "_sync_states", {}).get(str(obj.pk))
        if states is None:
            states = sync_states(
                object_type="customers.customer",
                objects=[obj],
                remote_ids={"stripe": "stripe_customer_id", "lago": "lago_id"},
            )[str(obj.pk)]
        return format_html_join(
            " · ",
            "{}: {}{}",
            (
                (name, state["status"], f" ({state['error'][:80]})" if state["error"] else "")
                for name, state in states.items()
            ),
        )

    def save_model(self, request, obj, form, change):
        # Through the services, like the API, so the same rules and sync apply.
        values = {
            name: form.cleaned_data[name]
            for name in services.UPDATABLE_FIELDS
            if name in form.cleaned_data
        }
        if change:
            saved = services.customer_update(customer=obj, **values)
        else:
            saved = services.customer_create(external_id=form.cleaned_data["external_id"], **values)
        # (A duplicate external_id is caught by the form's unique check first; a race past it
        # ends in the service's Conflict, which ServiceAdminMixin reports: nothing saved.)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def has_delete_permission(self, request, obj=None) -> bool:
        # Customers carry invoices and payments; they are never deleted from here.
        return False


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "customer",
        "exp_month",
        "exp_year",
        "billing_country",
        "is_default",
        "status",
        "created_at",
    ]
    list_filter = ["status", "is_default", "brand"]
    search_fields = ["stripe_payment_method_id", "customer__external_id", "last4"]
    list_select_related = ["customer"]
    readonly_fields = [f.name for f in PaymentMethod._meta.fields]
    actions = ["set_default", "remove"]

    def has_manage_permission(self, request) -> bool:
        # Both actions change the card in Stripe: viewing cards is not enough.
        return has_model_permission(request, PaymentMethod, "manage_payment_method")

    def _each(self, request, queryset, service, done: str) -> None:
        succeeded = run_each(
            request,
            queryset.select_related("customer"),
            lambda method: service(customer=method.customer, payment_method=method),
            done=done,
            refused="not done",
        )
        for method, result in succeeded:
            owed = getattr(result, "open_invoices_left_without_card", 0)
            if owed:
                messages.warning(
                    request,
                    f"{method.customer}: no card left, and {owed} open invoice(s) cannot be "
                    "collected until a new default card is added.",
                )

    @admin.action(
        description="Set as the customer's default (in Stripe too)", permissions=["manage"]
    )
    def set_default(self, request, queryset):
        self._each(request, queryset, services.payment_method_set_default, "now the default")

    @admin.action(description="Remove (detach in Stripe)", permissions=["manage"])
    def remove(self, request, queryset):
        self._each(request, queryset, services.payment_method_remove, "removed")
