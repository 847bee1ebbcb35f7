"""The columns of the CSV exports of invoices and credit notes (core/admin_csv.py): what
finance takes into a spreadsheet.

Money twice, side by side: `total` in major units at the currency's exponent ("58.80" for
5880 USD, "5880" for 5880 JPY), for people and spreadsheets; `total_minor_units`, the
integer as stored, for reconciling with Stripe and Lago (which speak minor units) without
a rounding question. `customer` is the external_id, the key the API and the providers
share; `customer_name` is for reading."""

from django.utils import timezone

from billing.invoicing.models import Invoice
from core.admin_csv import Column, major


def days_overdue(invoice: Invoice) -> int:
    today = timezone.localdate()
    if (
        invoice.status != Invoice.Status.FINALIZED
        or invoice.amount_due_cents <= 0
        or invoice.due_date is None
        or invoice.due_date >= today
    ):
        return 0
    return (today - invoice.due_date).days


def _amount(field: str) -> list[Column]:
    """A money column twice: major units for people, minor units for machines."""
    name = field.removesuffix("_amount_cents").removesuffix("_cents")
    return [
        (name, lambda i: major(getattr(i, field), i.currency)),
        (f"{name}_minor_units", lambda i: getattr(i, field)),
    ]


INVOICE_CSV: list[Column] = [
    ("number", lambda i: i.number),
    ("customer", lambda i: i.customer.external_id),
    ("customer_name", lambda i: i.customer.name),
    ("currency", lambda i: i.currency),
    ("invoice_type", lambda i: i.invoice_type),
    ("status", lambda i: i.status),
    ("payment_status", lambda i: i.payment_status),
    ("issued_at", lambda i: i.issued_at),
    ("due_date", lambda i: i.due_date),
    ("days_overdue", days_overdue),
    # The totals chain in the order of the invoice itself (billing/invoicing/totals.py).
    *_amount("fees_amount_cents"),
    *_amount("coupons_amount_cents"),
    *_amount("subtotal_amount_cents"),
    *_amount("taxes_amount_cents"),
    *_amount("total_amount_cents"),
    *_amount("prepaid_credit_amount_cents"),
    *_amount("credit_balance_amount_cents"),
    *_amount("paid_amount_cents"),
    *_amount("offset_amount_cents"),
    *_amount("credited_amount_cents"),
    *_amount("refunded_amount_cents"),
    *_amount("amount_due_cents"),
]


CREDIT_NOTE_CSV: list[Column] = [
    ("number", lambda n: n.number),
    ("invoice", lambda n: n.invoice.number),
    ("customer", lambda n: n.customer.external_id),
    ("customer_name", lambda n: n.customer.name),
    ("reason", lambda n: n.reason),
    ("status", lambda n: n.status),
    ("currency", lambda n: n.currency),
    *_amount("total_amount_cents"),
    *_amount("refund_amount_cents"),
    *_amount("credit_amount_cents"),
    *_amount("offset_amount_cents"),
    ("refund_status", lambda n: n.refund_status),
    ("issued_at", lambda n: n.issued_at),
    # Beyond the list's columns: the split of the total, what is left of the credit,
    # and whether staff must look at it.
    *_amount("subtotal_amount_cents"),
    *_amount("taxes_amount_cents"),
    *_amount("balance_amount_cents"),
    ("needs_review", lambda n: n.needs_review),
]
