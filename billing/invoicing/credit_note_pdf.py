"""A credit note as a PDF (`templates/billing/credit_note.html`, WeasyPrint), rendered on
demand like the invoice's: an issued credit note is immutable, so its PDF is too."""

from django.conf import settings
from django.template.loader import render_to_string

from billing.invoicing.models import CreditNote
from billing.invoicing.pdf import render_pdf
from core.iso import format_money


def credit_note_html(*, credit_note: CreditNote) -> str:
    currency = credit_note.currency

    def shown(cents: int) -> str:
        return format_money(cents, currency)

    return render_to_string(
        "billing/credit_note.html",
        {
            "note": credit_note,
            "invoice": credit_note.invoice,
            "customer": credit_note.customer,
            "issuer_name": settings.INVOICE_ISSUER_NAME,
            "items": [
                {"description": item.invoice_line.description, "amount": shown(item.amount_cents)}
                for item in credit_note.items.select_related("invoice_line")
            ],
            "rows": [
                (label, shown(cents))
                for label, cents in [
                    ("Coupons in proportion", -credit_note.coupons_amount_cents),
                    ("Subtotal", credit_note.subtotal_amount_cents),
                    (f"Tax ({credit_note.invoice.tax_rate}%)", credit_note.taxes_amount_cents),
                    ("Total credited", credit_note.total_amount_cents),
                    ("Refunded to the card", credit_note.refund_amount_cents),
                    ("Credited to the balance", credit_note.credit_amount_cents),
                    ("Offset against the invoice", credit_note.offset_amount_cents),
                ]
                if cents or label in ("Subtotal", "Total credited")
            ],
        },
    )


def credit_note_pdf(*, credit_note: CreditNote) -> bytes:
    return render_pdf(credit_note_html(credit_note=credit_note))
