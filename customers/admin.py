from django.contrib import admin
from django.utils.html import format_html_join

from billing.selectors import sync_states
from customers import services
from customers.models import Customer

EDITABLE = ["external_id", *services.UPDATABLE_FIELDS]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
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
                "fields": ["address_line1", "city", "zipcode", "state", "country", "tax_id"],
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
        # ends in the service's Conflict, which the admin shows as an error page.)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def has_delete_permission(self, request, obj=None) -> bool:
        # Customers carry invoices and payments; they are never deleted from here.
        return False
