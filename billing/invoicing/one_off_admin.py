"""A one-off invoice built in the back office: staff pick a customer and add-ons, see the
lines and totals before confirming, and the same service as `POST /api/v1/invoices/`
issues it. Needs `invoicing.create_one_off_invoice`."""

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from billing.invoicing import credit_notes
from billing.invoicing.models import AddOn, Invoice
from billing.invoicing.one_off import OneOffFee, one_off_invoice_create, one_off_quote
from billing.wallets import services as wallets
from core.admin_mixins import has_model_permission
from core.exceptions import DomainError
from core.iso import format_money
from customers.models import Customer

CREATE = "create_one_off_invoice"
ROWS = 5


class OneOffInvoiceForm(forms.Form):
    customer = forms.CharField(label="Customer external_id", max_length=255)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        add_ons = AddOn.objects.order_by("code")
        for row in range(1, ROWS + 1):
            self.fields[f"add_on_{row}"] = forms.ModelChoiceField(
                add_ons, required=row == 1, label=f"Add-on {row}", to_field_name="code"
            )
            self.fields[f"units_{row}"] = forms.DecimalField(
                required=False, min_value=Decimal("0.000001"), max_digits=20, decimal_places=6
            )
            self.fields[f"unit_amount_cents_{row}"] = forms.IntegerField(
                required=False, min_value=0, label="Unit amount (minor units)"
            )
            self.fields[f"description_{row}"] = forms.CharField(required=False, max_length=255)

    def clean_customer(self) -> Customer:
        customer = Customer.objects.filter(external_id=self.cleaned_data["customer"]).first()
        if customer is None:
            raise forms.ValidationError("No customer with that external_id.")
        return customer

    def rows(self):
        return [
            [
                self[f"{name}_{row}"]
                for name in ("add_on", "units", "unit_amount_cents", "description")
            ]
            for row in range(1, ROWS + 1)
        ]

    def fees(self) -> list[OneOffFee]:
        data = self.cleaned_data
        return [
            OneOffFee(
                add_on=add_on,
                units=data.get(f"units_{row}") or Decimal(1),
                unit_amount_cents=data.get(f"unit_amount_cents_{row}"),
                description=data.get(f"description_{row}") or "",
            )
            for row in range(1, ROWS + 1)
            if (add_on := data.get(f"add_on_{row}")) is not None
        ]


def one_off_invoice_view(model_admin, request):
    """GET: the form. POST `preview`: the lines and totals. POST `confirm`: issued, then
    the invoice's page."""
    if not has_model_permission(request, AddOn, CREATE):
        raise PermissionDenied
    form = OneOffInvoiceForm(request.POST or None)
    quote, error, shown, lines = None, "", [], []
    if request.method == "POST" and form.is_valid():
        customer = form.cleaned_data["customer"]
        try:
            quote = one_off_quote(customer=customer, currency=customer.currency, fees=form.fees())
            if "confirm" in request.POST:
                invoice = one_off_invoice_create(
                    customer=customer, currency=customer.currency, fees=form.fees()
                )
                messages.success(request, f"One-off invoice {invoice} created.")
                return HttpResponseRedirect(
                    reverse("admin:invoicing_invoice_change", args=[invoice.pk])
                )
        except DomainError as exc:
            error, quote = str(exc), None
        if quote is not None:
            currency = customer.currency
            lines = [
                (
                    fee.description or fee.add_on.invoice_display_name or fee.add_on.name,
                    fee.units.normalize(),
                    format_money(amount, currency),
                )
                for fee, amount, _ in quote.lines
            ]
            totals = quote.totals
            # What finalization will take off before the card, in the totals' order.
            prepaid = min(
                wallets.balance(customer_id=customer.pk, currency=currency),
                max(totals.total_amount_cents, 0),
            )
            credit = min(
                credit_notes.credit_balance(customer_id=customer.pk, currency=currency),
                max(totals.total_amount_cents - prepaid, 0),
            )
            shown = [
                ("Fees", format_money(totals.fees_amount_cents, currency)),
                (f"Tax ({totals.tax_rate} %)", format_money(totals.taxes_amount_cents, currency)),
                ("Total", format_money(totals.total_amount_cents, currency)),
                ("Prepaid credits to apply", format_money(-prepaid, currency)),
                ("Credit balance to apply", format_money(-credit, currency)),
                (
                    "To be charged to the card",
                    format_money(totals.total_amount_cents - prepaid - credit, currency),
                ),
            ]
    return TemplateResponse(
        request,
        "admin/invoicing/invoice/one_off.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": "Create a one-off invoice",
            "form": form,
            "quote": quote,
            "lines": lines,
            "shown": shown,
            "error": error,
            "opts": Invoice._meta,
        },
    )


def one_off_urls(model_admin) -> list:
    opts = model_admin.model._meta
    return [
        path(
            "one_off/",
            model_admin.admin_site.admin_view(
                lambda request: one_off_invoice_view(model_admin, request)
            ),
            name=f"{opts.app_label}_{opts.model_name}_one_off",
        )
    ]
