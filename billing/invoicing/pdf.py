"""An invoice as a PDF: the HTML template `templates/billing/invoice.html` rendered by
WeasyPrint. Rendered on demand: a finalized invoice is immutable, so its PDF is too."""

from typing import Any, NoReturn

from django.conf import settings
from django.template.loader import render_to_string

from billing.invoicing.models import Invoice
from billing.invoicing.totals import totals_shown
from core.iso import format_money


def invoice_html(*, invoice: Invoice) -> str:
    lines = [
        {
            "line": line,
            "amount": format_money(line.amount_cents, invoice.currency),
            "units": line.units.normalize(),
            "unit_amount": line.unit_amount.normalize(),
        }
        for line in invoice.lines.select_related("metric")
    ]
    return render_to_string(
        "billing/invoice.html",
        {
            "invoice": invoice,
            "customer": invoice.customer,
            "issuer_name": settings.INVOICE_ISSUER_NAME,
            "lines": lines,
            "totals": [
                {"label": label, "amount": format_money(cents, invoice.currency), "grand": grand}
                for label, cents, grand in totals_shown(invoice)
            ],
        },
    )


def invoice_pdf(*, invoice: Invoice) -> bytes:
    return render_pdf(invoice_html(invoice=invoice))


def render_pdf(html: str) -> bytes:
    # Imported here: WeasyPrint loads Pango, which only this path needs.
    from weasyprint import HTML

    # No base_url and no url_fetcher access: the template embeds everything it shows, so
    # rendering never reaches the network or the file system.
    pdf: bytes = HTML(string=html, url_fetcher=_no_fetch).write_pdf()
    return pdf


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> NoReturn:
    raise ValueError(f"invoice PDFs load no external resource ({url[:40]})")
