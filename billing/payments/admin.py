"""Collection in the back office: payment attempts, and the invoice page with them."""

from typing import ClassVar

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from billing.invoicing.admin import InvoiceAdmin, InvoiceReadOnlyInline, money
from billing.invoicing.models import CreditNote, Invoice
from billing.payments import collection
from billing.payments.credit_note_admin import credit_note_urls
from billing.payments.models import PaymentAttempt
from core.admin_csv import Column, CsvExportMixin, major
from core.admin_mixins import ReadOnlyAdminMixin


class PaymentAttemptInline(InvoiceReadOnlyInline):
    model = PaymentAttempt
    verbose_name_plural = "Payment attempts"
    fields: ClassVar[tuple[str, ...]] = (
        "number",
        "status",
        "amount",
        "stripe_payment_intent_id",
        "stripe_status",
        "failure_code",
        "failure_message",
        "created_at",
        "completed_at",
    )
    readonly_fields = fields

    @admin.display(description="Amount")
    def amount(self, obj: PaymentAttempt) -> str:
        return money(obj.amount_cents, obj.currency)


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(CsvExportMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    csv_name = "payments"
    csv_columns: ClassVar[list[Column]] = [
        ("invoice", lambda a: a.invoice.number),
        ("customer", lambda a: a.invoice.customer.external_id),
        ("customer_name", lambda a: a.invoice.customer.name),
        ("attempt", lambda a: a.number),
        ("amount", lambda a: major(a.amount_cents, a.currency)),
        ("amount_minor_units", lambda a: a.amount_cents),
        ("currency", lambda a: a.currency),
        ("status", lambda a: a.status),
        ("automatic", lambda a: a.automatic),
        ("failure_code", lambda a: a.failure_code),
        ("failure_message", lambda a: a.failure_message),
        ("stripe_payment_intent", lambda a: a.stripe_payment_intent_id),
        ("stripe_status", lambda a: a.stripe_status),
        ("created_at", lambda a: a.created_at),
        ("completed_at", lambda a: a.completed_at),
    ]
    list_display = [
        "__str__",
        "invoice_link",
        "number",
        "status",
        "amount",
        "stripe_payment_intent_id",
        "stripe_status",
        "failure_code",
        "short_failure",
        "created_at",
        "completed_at",
    ]
    list_filter = ["status", "needs_review"]
    # Exact: the unique index answers it, and a PaymentIntent id is pasted whole.
    search_fields = ["=stripe_payment_intent_id"]
    search_help_text = "A Stripe PaymentIntent id (pi_…), whole."
    list_select_related = ["invoice", "invoice__customer"]
    readonly_fields = [*(f.name for f in PaymentAttempt._meta.fields), "amount"]
    show_full_result_count = False

    @admin.display(description="Invoice", ordering="invoice")
    def invoice_link(self, obj: PaymentAttempt) -> str:
        url = reverse(f"{self.admin_site.name}:invoicing_invoice_change", args=[obj.invoice_id])
        return format_html('<a href="{}">{}</a>', url, obj.invoice)

    @admin.display(description="Amount", ordering="amount_cents")
    def amount(self, obj: PaymentAttempt) -> str:
        return money(obj.amount_cents, obj.currency)

    @admin.display(description="Failure")
    def short_failure(self, obj: PaymentAttempt) -> str:
        return obj.failure_message[:120]


class CreditNoteInline(InvoiceReadOnlyInline):
    model = CreditNote
    verbose_name_plural = "Credit notes"
    fields: ClassVar[tuple[str, ...]] = (
        "number_link",
        "reason",
        "total",
        "refund_amount_cents",
        "credit_amount_cents",
        "offset_amount_cents",
        "refund_status",
        "status",
        "issued_at",
    )
    readonly_fields = fields

    @admin.display(description="Number")
    def number_link(self, obj: CreditNote) -> str:
        url = reverse("admin:invoicing_creditnote_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.number)

    @admin.display(description="Total")
    def total(self, obj: CreditNote) -> str:
        return money(obj.total_amount_cents, obj.currency)


admin.site.unregister(Invoice)


@admin.register(Invoice)
class CollectedInvoiceAdmin(InvoiceAdmin):
    """The invoice page with its payment attempts and the retry action."""

    inlines = [*InvoiceAdmin.inlines, PaymentAttemptInline, CreditNoteInline]
    actions = [*InvoiceAdmin.actions, "retry_payment"]
    readonly_fields = [*InvoiceAdmin.readonly_fields, "credit_note_button"]
    fieldsets = [
        (None, {"fields": [*InvoiceAdmin.fieldsets[0][1]["fields"], "credit_note_button"]}),
        *InvoiceAdmin.fieldsets[1:],
    ]

    class Media:
        css = {"all": ["payments/invoice_list.css"]}

    def get_urls(self):
        return [*credit_note_urls(self), *super().get_urls()]

    @admin.display(description="Correct")
    def credit_note_button(self, obj: Invoice) -> str:
        if obj.status != Invoice.Status.FINALIZED or (
            obj.engine == Invoice.Engine.LAGO and obj.lago_id is None
        ):
            return "Credit notes are issued on finalized invoices."
        url = reverse("admin:invoicing_invoice_credit_note", args=[obj.pk])
        return format_html('<a class="button" href="{}">Issue a credit note…</a>', url)

    @admin.display(description="Why not collected")
    def collection(self, obj: Invoice) -> str:
        said = super().collection(obj)
        if said:
            return said
        if obj.attempts.filter(status=PaymentAttempt.Status.PROCESSING).exists():
            return "A payment attempt is in progress."
        last = obj.attempts.order_by("-number").first()
        failed = (
            f" Last attempt failed: {last.failure_message or last.failure_code or 'no reason'}."
            if last is not None and last.status == PaymentAttempt.Status.FAILED
            else ""
        )
        if obj.next_payment_attempt_at:
            when = timezone.localtime(obj.next_payment_attempt_at)
            return f"Next attempt at {when:%Y-%m-%d %H:%M %Z}.{failed}"
        return f"No attempt planned: use the “Retry payment” action.{failed}"

    @admin.action(description="Retry payment now", permissions=["run"])
    def retry_payment(self, request, queryset):
        page = self._confirmed(
            request,
            queryset,
            "retry_payment",
            "Retry payment",
            "Each invoice's amount due is charged to the customer's default card now.",
        )
        if page is not None:
            return page
        self._each(request, queryset, collection.invoice_pay, "queued for payment")
        return None
