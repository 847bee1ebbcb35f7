"""Invoices in the back office. Collection (attempts, retry) is added by billing.payments,
which registers its own subclass of InvoiceAdmin."""

from collections import defaultdict
from typing import ClassVar

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe

from billing.invoicing import engines, receivables
from billing.invoicing.exports import INVOICE_CSV, days_overdue
from billing.invoicing.models import AddOn, Invoice, InvoiceLine, InvoiceSequence
from billing.invoicing.one_off_admin import one_off_urls
from billing.invoicing.pdf import invoice_pdf
from billing.invoicing.receivables import BUCKETS
from billing.invoicing.totals import totals_shown
from core.admin_actions import few, run_each
from core.admin_csv import CsvExportMixin
from core.admin_detail_actions import DetailActionsMixin
from core.admin_mixins import ReadOnlyAdminMixin
from core.iso import format_money
from subscriptions.models import Plan

MAX_CONFIRM_LISTED = 50


def _back(request) -> str:
    referer = request.META.get("HTTP_REFERER", "")
    safe = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return referer if safe else reverse("admin:invoicing_invoice_changelist")


def offered(action: str, invoice: Invoice) -> bool:
    """Whether the invoice's state lets the action do anything (the services still
    decide: this only keeps pointless buttons off the page)."""
    if action == "finalize":
        return invoice.status == Invoice.Status.DRAFT
    if action == "void":
        return invoice.status == Invoice.Status.FINALIZED and invoice.paid_amount_cents == 0
    if action == "retry_payment":
        return invoice.status == Invoice.Status.FINALIZED and invoice.amount_due_cents > 0
    return False


def what_happens(action: str, invoice: Invoice) -> str:
    """The money an action moves on one invoice, said before it happens."""
    fmt = lambda cents: format_money(cents, invoice.currency)  # noqa: E731
    if action == "finalize":
        return (
            f"total {fmt(invoice.total_amount_cents)}; the customer's prepaid credits and "
            "credit balance are taken off it first, then the rest is charged to the default card"
        )
    if action == "void":
        given = invoice.prepaid_credit_amount_cents + invoice.credit_balance_amount_cents
        back = f"; {fmt(given)} of credits given back" if given else ""
        return (
            f"total {fmt(invoice.total_amount_cents)}; "
            f"{fmt(invoice.amount_due_cents)} will no longer be collected{back}"
        )
    if action == "retry_payment":
        return f"{fmt(invoice.amount_due_cents)} charged to the default card now"
    return ""


def money(cents: int | None, currency: str) -> str:
    return "—" if cents is None else format_money(cents, currency)


def _invoice_staff_can(request, action: str) -> bool:
    """Invoice permissions, also for the inlines: a user who may see an invoice sees its
    lines and attempts without needing permissions on those models too."""
    opts = Invoice._meta
    codenames = ["view", "change"] if action == "view" else [action]
    return any(
        request.user.has_perm(f"{opts.app_label}.{get_permission_codename(c, opts)}")
        for c in codenames
    )


class InvoiceReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_view_permission(self, request, obj=None) -> bool:
        return _invoice_staff_can(request, "view")


class InvoiceLineInline(InvoiceReadOnlyInline):
    model = InvoiceLine
    fields: ClassVar[tuple[str, ...]] = (
        "position",
        "fee_type",
        "description",
        "plan_code",
        "metric",
        "charge_model",
        "filter",
        "grouped_by",
        "units_shown",
        "unit_amount_shown",
        "amount",
        "from_datetime",
        "to_datetime",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("metric", "invoice")

    # Written out in plain digits: Decimal.normalize() alone shows 2000 as "2E+3".
    @admin.display(description="Units")
    def units_shown(self, obj: InvoiceLine) -> str:
        return f"{obj.units.normalize():f}"

    @admin.display(description="Unit amount")
    def unit_amount_shown(self, obj: InvoiceLine) -> str:
        return f"{obj.unit_amount.normalize():f}"

    @admin.display(description="Amount")
    def amount(self, obj: InvoiceLine) -> str:
        return money(obj.amount_cents, obj.invoice.currency)


class CurrencyFilter(admin.SimpleListFilter):
    """The currencies of the plans, not `SELECT DISTINCT` over every invoice (a scan of the
    whole table on each list page): an invoice is in its subscription plan's currency."""

    title = "currency"
    parameter_name = "currency"

    def lookups(self, request, model_admin):
        currencies = set(Plan.objects.values_list("currency", flat=True).distinct())
        chosen = self.value()
        if chosen:
            currencies.add(chosen)
        return [(c, c) for c in sorted(currencies)]

    def queryset(self, request, queryset):
        return queryset.filter(currency=self.value()) if self.value() else queryset


class AgeingFilter(admin.SimpleListFilter):
    """Still owed, by days past the due date (billing/invoicing/receivables.py): the
    dashboard's ageing links land here."""

    title = "amount due, by age"
    parameter_name = "ageing"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue (any)")] + [(key, label) for key, label, *_ in BUCKETS]

    def queryset(self, request, queryset):
        key = self.value()
        if not key:
            return queryset
        try:
            bucket = receivables.in_bucket(key, timezone.localdate())
        except ValueError as exc:
            raise IncorrectLookupParameters(str(exc)) from exc
        return receivables.owed(queryset).filter(bucket)


class CollectionFilter(admin.SimpleListFilter):
    """What staff chase: issued invoices still owed, and those no attempt is planned for."""

    title = "collection"
    parameter_name = "collection"
    OWED = Q(status=Invoice.Status.FINALIZED, payment_status__in=["pending", "failed"])

    def lookups(self, request, model_admin):
        return [
            ("owed", "Owed (pending or failed)"),
            ("scheduled", "Owed, attempt scheduled"),
            ("blocked", "Owed, blocked (see reason)"),
            ("stopped", "Owed, no attempt planned"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "owed":
            return queryset.filter(self.OWED)
        if value == "scheduled":
            return queryset.filter(self.OWED, next_payment_attempt_at__isnull=False)
        if value == "blocked":
            return queryset.filter(self.OWED).exclude(payment_blocked_reason="")
        if value == "stopped":
            return queryset.filter(
                self.OWED, next_payment_attempt_at__isnull=True, payment_blocked_reason=""
            )
        return queryset


@admin.register(Invoice)
class InvoiceAdmin(CsvExportMixin, DetailActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Invoices change only through the services (the actions below), never by editing a
    field. Running an action needs the `change_invoice` permission; seeing needs view."""

    # What staff sort by, narrow enough for a 1400 px screen; the subscription, the issue
    # date and the reconciliation are on the page (and in the filters).
    list_display = [
        "number_shown",
        "customer_shown",
        "total",
        "amount_due_listed",
        "due",
        "overdue_days",
        "state",
    ]
    list_filter = [
        "status",
        "payment_status",
        AgeingFilter,
        CollectionFilter,
        CurrencyFilter,
        "engine",
        "reconciliation",
    ]
    search_fields = [
        "number",
        "lago_number",
        "customer__external_id",
        "subscription__external_id",
    ]
    search_help_text = "Invoice number, customer or subscription external_id."
    list_select_related = ["customer", "subscription"]
    # A MIN/MAX the issued_at index answers, then one pass for the distinct years or
    # months: about the cost of the count the paginator makes on every page anyway.
    date_hierarchy = "issued_at"
    show_full_result_count = False
    inlines = [InvoiceLineInline]
    csv_columns = INVOICE_CSV
    csv_name = "invoices"
    actions = ["finalize", "void"]
    # Each confirms itself, saying the money it moves (what_happens).
    detail_actions = [
        ("finalize", "Finalize…", True),
        ("retry_payment", "Retry payment…", True),
        ("void", "Void…", True),
    ]

    def detail_action_offered(self, action: str, obj: Invoice) -> bool:
        return offered(action, obj)

    readonly_fields = [
        *(f.name for f in Invoice._meta.fields),
        "pdf_link",
        "period",
        "subtotal",
        "taxes",
        "total",
        "amount_due",
        "collection",
        "payment_blocked_detail",
        "totals_table",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "number",
                    "status",
                    "pdf_link",
                    "customer",
                    "subscription",
                    "period",
                    "issued_at",
                    "due_date",
                    "voided_at",
                ]
            },
        ),
        ("Amounts", {"fields": ["currency", "invoice_type", "totals_table"]}),
        (
            "Collection",
            {
                "fields": [
                    "payment_status",
                    "amount_due",
                    "collection",
                    "payment_blocked_reason",
                    "payment_blocked_detail",
                    "next_payment_attempt_at",
                    "paid_at",
                ]
            },
        ),
        (
            "Engine",
            {
                "fields": [
                    "engine",
                    "issuer",
                    "lago_id",
                    "lago_number",
                    "lago_payment_status_sent",
                    "reconciliation",
                    "reconciliation_note",
                ]
            },
        ),
        ("Record", {"fields": ["id", "created_at", "updated_at"]}),
    ]

    # --- Columns and fields -------------------------------------------------------------
    @admin.display(description="Totals")
    def totals_table(self, obj: Invoice) -> str:
        """The totals chain (billing/invoicing/totals.py), as on the PDF."""
        return format_html(
            '<table class="invoice-totals">{}</table>',
            format_html_join(
                "",
                '<tr><th{}>{}</th><td style="text-align:right">{}</td></tr>',
                (
                    (
                        mark_safe(' style="font-weight:bold"') if grand else "",
                        label,
                        money(cents, obj.currency),
                    )
                    for label, cents, grand in totals_shown(obj)
                ),
            ),
        )

    @admin.display(description="Number", ordering="number")
    def number_shown(self, obj: Invoice) -> str:
        return obj.number or obj.lago_number or "draft"

    @admin.display(description="Customer", ordering="customer__external_id")
    def customer_shown(self, obj: Invoice) -> str:
        return obj.customer.external_id

    @admin.display(description="Subscription", ordering="subscription__external_id")
    def subscription_shown(self, obj: Invoice) -> str:
        return obj.subscription.external_id if obj.subscription is not None else "—"

    @admin.display(description="Period", ordering="period_start")
    def period(self, obj: Invoice) -> str:
        if obj.period_start.date() == obj.period_end.date():
            return f"{obj.period_start:%Y-%m-%d}"
        return f"{obj.period_start:%Y-%m-%d} → {obj.period_end:%Y-%m-%d}"

    @admin.display(description="Subtotal")
    def subtotal(self, obj: Invoice) -> str:
        return money(obj.subtotal_amount_cents, obj.currency)

    @admin.display(description="Taxes")
    def taxes(self, obj: Invoice) -> str:
        return money(obj.taxes_amount_cents, obj.currency)

    @admin.display(description="Total", ordering="total_amount_cents")
    def total(self, obj: Invoice) -> str:
        return money(obj.total_amount_cents, obj.currency)

    @admin.display(description="Amount due")
    def amount_due(self, obj: Invoice) -> str:
        return money(obj.amount_due_cents, obj.currency)

    def get_queryset(self, request):
        # Sortable in SQL, and sorted as the columns read them (receivables.py).
        return (
            super()
            .get_queryset(request)
            .annotate(due_cents=receivables.amount_due_of_any())
            .annotate(days_late=receivables.days_overdue(timezone.localdate()))
        )

    @admin.display(description="Amount due", ordering="due_cents")
    def amount_due_listed(self, obj: Invoice) -> str:
        if obj.status != Invoice.Status.FINALIZED:
            return "—"
        return money(obj.amount_due_cents, obj.currency)

    @admin.display(description="Status", ordering="payment_status")
    def state(self, obj: Invoice) -> str:
        """One column for two: an issued invoice's status is where its payment stands
        (a voided one's payment status says "Voided" too)."""
        if obj.status == Invoice.Status.DRAFT:
            return obj.get_status_display()
        return obj.get_payment_status_display()

    @admin.display(description="Due", ordering="due_date")
    def due(self, obj: Invoice) -> str:
        return f"{obj.due_date:%Y-%m-%d}" if obj.due_date else "—"

    @admin.display(description="Days overdue", ordering="days_late")
    def overdue_days(self, obj: Invoice) -> int | str:
        return days_overdue(obj) or "—"

    @admin.display(description="PDF")
    def pdf_link(self, obj: Invoice) -> str:
        url = reverse(f"{self.admin_site.name}:invoicing_invoice_pdf", args=[obj.pk])
        return format_html('<a href="{}">Download PDF</a>', url)

    @admin.display(description="Why not collected")
    def collection(self, obj: Invoice) -> str:
        """One sentence: where collection stands (billing.payments adds the attempts)."""
        if obj.status == Invoice.Status.DRAFT:
            return "A draft: nothing is collected until it is finalized."
        if obj.status == Invoice.Status.VOIDED:
            return "Voided: nothing to collect."
        if obj.payment_status in (Invoice.PaymentStatus.SUCCEEDED, Invoice.PaymentStatus.REFUNDED):
            return f"Nothing due: payment {obj.payment_status}."
        if obj.payment_blocked_reason:
            return f"Blocked: {obj.payment_blocked_detail}"
        return ""

    # --- The PDF ------------------------------------------------------------------------
    def get_urls(self):
        opts = self.model._meta
        return [
            *one_off_urls(self),
            path(
                "<path:object_id>/pdf/",
                self.admin_site.admin_view(self.pdf_view),
                name=f"{opts.app_label}_{opts.model_name}_pdf",
            ),
            *super().get_urls(),
        ]

    def pdf_view(self, request, object_id):
        invoice = self.get_object(request, unquote(object_id))
        if invoice is None:
            raise Http404("No such invoice.")
        if not self.has_view_permission(request, invoice):
            raise PermissionDenied
        response = HttpResponse(invoice_pdf(invoice=invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{invoice}.pdf"'
        return response

    # --- Actions ------------------------------------------------------------------------
    def has_run_permission(self, request) -> bool:
        # Fields are never edited here, so `change_invoice` means "may run the services".
        return _invoice_staff_can(request, "change")

    def _each(self, request, queryset, service, done: str) -> None:
        """The service on each invoice; staff are also told which ones, though done, will
        not be collected as they stand."""
        succeeded = run_each(
            request,
            queryset.select_related(None).order_by("created_at", "id"),
            lambda invoice: service(invoice=invoice),
            done=done,
            noun="invoice(s)",
        )
        blocked: dict[str, list[str]] = defaultdict(list)
        for _, result in succeeded:
            if result.status == Invoice.Status.FINALIZED and result.payment_blocked_reason:
                blocked[result.payment_blocked_detail].append(str(result))
        for reason, numbers in blocked.items():
            messages.warning(
                request, f"Payment blocked for {len(numbers)} of them: {reason} ({few(numbers)})"
            )

    def _confirmed(self, request, queryset, action: str, title: str, warning: str):
        """None once confirmed; else the page asking to confirm (irreversible moves)."""
        if "apply" in request.POST:
            return None
        select_across = request.POST.get("select_across") == "1"
        return TemplateResponse(
            request,
            "admin/billing/invoice/confirm_action.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "warning": warning,
                "invoices": [
                    (invoice, what_happens(action, invoice))
                    for invoice in queryset.select_related("customer")[:MAX_CONFIRM_LISTED]
                ],
                # Posted back with the confirmation; with "select across" the filters
                # in the URL choose the invoices again, one id only keeps Django's check.
                "selected": queryset.values_list("pk", flat=True)[: 1 if select_across else None],
                "count": queryset.count(),
                "action": action,
                "opts": self.model._meta,
                "select_across": "1" if select_across else "0",
                # Where "No, take me back" goes: the page the action was started from.
                "back": _back(request),
            },
        )

    @admin.action(description="Finalize (number and issue)", permissions=["run"])
    def finalize(self, request, queryset):
        page = self._confirmed(
            request,
            queryset,
            "finalize",
            "Finalize invoices",
            "Each draft gets the next invoice number and is issued; it can never be edited "
            "again, and payment is asked for.",
        )
        if page is not None:
            return page
        self._each(request, queryset, engines.invoice_finalize, "finalized")
        return None

    def has_void_permission(self, request) -> bool:
        return request.user.has_perm("invoicing.void_invoice")

    @admin.action(description="Void", permissions=["void"])
    def void(self, request, queryset):
        page = self._confirmed(
            request,
            queryset,
            "void",
            "Void invoices",
            "A voided invoice stays on record, is no longer collected, and cannot be "
            "reopened. Paid invoices are refused.",
        )
        if page is not None:
            return page
        self._each(request, queryset, engines.invoice_void, "voided")
        return None


@admin.register(InvoiceSequence)
class InvoiceSequenceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Numbers are taken by finalization only; a sequence edited by hand would break the
    gapless numbering, so it is shown, never changed here."""

    list_display = ["issuer", "prefix", "next_value", "next_number"]
    readonly_fields = ["issuer", "prefix", "next_value", "next_number"]

    @admin.display(description="Next number")
    def next_number(self, obj: InvoiceSequence) -> str:
        return f"{obj.prefix}-{obj.next_value:06d}"


@admin.register(AddOn)
class AddOnAdmin(admin.ModelAdmin):
    """The add-on catalog; saved through the model, so each change reaches Lago too."""

    list_display = ["code", "name", "amount_cents", "amount_currency"]
    search_fields = ["code", "name"]
