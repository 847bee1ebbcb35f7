"""Credit notes in the back office: the list and page of each (read-only: issued notes
never change), its PDF, and issuing one from an invoice's page, where staff choose the
lines and amounts, see the totals before confirming, and the same service as the API's
issues it. Issuing needs `invoicing.issue_credit_note`; voiding `invoicing.void_credit_note`."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from billing.invoicing import credit_notes
from billing.invoicing.admin import money
from billing.invoicing.credit_note_pdf import credit_note_pdf
from billing.invoicing.exports import CREDIT_NOTE_CSV
from billing.invoicing.models import CreditNote, Invoice, InvoiceLine
from core.admin_actions import run_each
from core.admin_csv import CsvExportMixin
from core.admin_mixins import ReadOnlyAdminMixin, has_model_permission
from core.exceptions import DomainError

ISSUE = "issue_credit_note"


class CreditNoteForm(forms.Form):
    reason = forms.ChoiceField(choices=CreditNote.Reason.choices)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    refund_amount_cents = forms.IntegerField(
        required=False, min_value=0, label="Refund to the card (minor units)"
    )
    credit_amount_cents = forms.IntegerField(
        required=False, min_value=0, label="Credit to the balance (minor units)"
    )
    offset_amount_cents = forms.IntegerField(
        required=False, min_value=0, label="Offset against what is owed (minor units)"
    )

    def __init__(self, *args, lines: list[InvoiceLine], **kwargs):
        super().__init__(*args, **kwargs)
        self.lines = lines
        for line in lines:
            self.fields[f"line_{line.pk}"] = forms.IntegerField(
                required=False,
                min_value=0,
                max_value=line.creditable_amount_cents,
                label=f"{line.position}. {line.description}",
                help_text=f"up to {line.creditable_amount_cents} of {line.amount_cents}",
            )

    def items(self) -> list[credit_notes.ItemRequest]:
        return [
            credit_notes.ItemRequest(line_id=line.pk, amount_cents=amount)
            for line in self.lines
            if (amount := self.cleaned_data.get(f"line_{line.pk}"))
        ]

    def line_fields(self):
        return [self[f"line_{line.pk}"] for line in self.lines]


def issue_credit_note_view(model_admin, request, object_id):
    """GET: the form. POST `preview`: the totals, with the form to confirm. POST
    `confirm`: issued, then the credit note's page."""
    invoice = model_admin.get_object(request, unquote(object_id))
    if invoice is None:
        raise Http404("No such invoice.")
    if not has_model_permission(request, CreditNote, ISSUE):
        raise PermissionDenied
    lines = [
        line
        for line in invoice.lines.order_by("position")
        if line.creditable_amount_cents > 0 and line.fee_type != InvoiceLine.FeeType.COUPON
    ]
    form = CreditNoteForm(request.POST or None, lines=lines)
    quote, error = None, ""
    if request.method == "POST" and form.is_valid():
        try:
            quote = credit_notes.estimate(invoice=invoice, items=form.items())
            data = form.cleaned_data
            credit_notes.split(
                invoice,
                quote,
                data.get("refund_amount_cents"),
                data.get("credit_amount_cents"),
                data.get("offset_amount_cents"),
            )
            if "confirm" in request.POST:
                note = _issue(request, invoice, form)
                messages.success(request, f"Credit note {note} issued.")
                return HttpResponseRedirect(
                    reverse("admin:invoicing_creditnote_change", args=[note.pk])
                )
        except DomainError as exc:
            error = str(exc)
            quote = None
    return TemplateResponse(
        request,
        "admin/billing/invoice/credit_note.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": f"Issue a credit note on invoice {invoice}",
            "invoice": invoice,
            "form": form,
            "quote": quote,
            "shown": _shown(invoice, quote),
            "error": error,
            "opts": Invoice._meta,
            "paid": money(invoice.paid_amount_cents, invoice.currency),
            "due": money(invoice.amount_due_cents, invoice.currency),
        },
    )


def _issue(request, invoice: Invoice, form: CreditNoteForm) -> CreditNote:
    data = form.cleaned_data
    return credit_notes.credit_note_create(
        invoice=invoice,
        reason=data["reason"],
        items=form.items(),
        refund_amount_cents=data.get("refund_amount_cents"),
        credit_amount_cents=data.get("credit_amount_cents"),
        offset_amount_cents=data.get("offset_amount_cents"),
        description=data.get("description") or "",
        created_by=f"staff:{request.user.get_username()}",
    )


def _shown(invoice: Invoice, quote) -> list[tuple[str, str]]:
    if quote is None:
        return []
    return [
        ("Items", money(sum(amount for _, amount in quote.items), invoice.currency)),
        ("Coupons in proportion", money(-quote.coupons_amount_cents, invoice.currency)),
        ("Subtotal", money(quote.subtotal_amount_cents, invoice.currency)),
        (f"Tax ({invoice.tax_rate} %)", money(quote.taxes_amount_cents, invoice.currency)),
        ("Credit note total", money(quote.total_amount_cents, invoice.currency)),
        ("Refundable to the card", money(quote.refundable_amount_cents, invoice.currency)),
        ("Still owed on the invoice", money(quote.offsettable_amount_cents, invoice.currency)),
    ]


def credit_note_urls(model_admin) -> list:
    opts = model_admin.model._meta
    return [
        path(
            "<path:object_id>/credit_note/",
            model_admin.admin_site.admin_view(
                lambda request, object_id: issue_credit_note_view(model_admin, request, object_id)
            ),
            name=f"{opts.app_label}_{opts.model_name}_credit_note",
        )
    ]


@admin.register(CreditNote)
class CreditNoteAdmin(CsvExportMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    csv_columns = CREDIT_NOTE_CSV
    csv_name = "credit-notes"
    list_display = [
        "number",
        "invoice_link",
        "customer",
        "reason",
        "total",
        "refund",
        "credit",
        "offset",
        "refund_status",
        "status",
        "needs_review",
        "issued_at",
    ]
    list_filter = ["status", "reason", "refund_status", "needs_review", "currency"]
    search_fields = ["number", "invoice__number", "customer__external_id"]
    search_help_text = "Credit note number, invoice number or customer external_id."
    list_select_related = ["invoice", "customer"]
    show_full_result_count = False
    actions = ["void"]
    readonly_fields = [
        *(f.name for f in CreditNote._meta.fields),
        "invoice_link",
        "total",
        "refund",
        "credit",
        "offset",
        "pdf_link",
    ]

    @admin.display(description="Invoice", ordering="invoice__number")
    def invoice_link(self, obj: CreditNote) -> str:
        url = reverse("admin:invoicing_invoice_change", args=[obj.invoice_id])
        return format_html('<a href="{}">{}</a>', url, obj.invoice)

    @admin.display(description="Total", ordering="total_amount_cents")
    def total(self, obj: CreditNote) -> str:
        return money(obj.total_amount_cents, obj.currency)

    @admin.display(description="Refunded")
    def refund(self, obj: CreditNote) -> str:
        return money(obj.refund_amount_cents, obj.currency)

    @admin.display(description="Credited")
    def credit(self, obj: CreditNote) -> str:
        return money(obj.credit_amount_cents, obj.currency)

    @admin.display(description="Offset")
    def offset(self, obj: CreditNote) -> str:
        return money(obj.offset_amount_cents, obj.currency)

    @admin.display(description="PDF")
    def pdf_link(self, obj: CreditNote) -> str:
        url = reverse("admin:invoicing_creditnote_pdf", args=[obj.pk])
        return format_html('<a href="{}">Download {}.pdf</a>', url, obj)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/pdf/",
                self.admin_site.admin_view(self.pdf_view),
                name="invoicing_creditnote_pdf",
            ),
            *super().get_urls(),
        ]

    def pdf_view(self, request, object_id):
        note = self.get_object(request, unquote(object_id))
        if note is None:
            raise Http404("No such credit note.")
        if not self.has_view_permission(request, note):
            raise PermissionDenied
        response = HttpResponse(credit_note_pdf(credit_note=note), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{note}.pdf"'
        return response

    def has_void_permission(self, request) -> bool:
        return has_model_permission(request, CreditNote, "void_credit_note")

    @admin.action(description="Void (gives back what it credited)", permissions=["void"])
    def void(self, request, queryset):
        run_each(
            request,
            queryset.order_by("issued_at"),
            lambda note: credit_notes.credit_note_void(credit_note=note),
            done="voided",
            noun="credit note(s)",
        )
