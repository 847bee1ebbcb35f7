"""An invoice's totals, in one place and in one order, each step rounded once:

    fees - coupons = subtotal            (coupons before tax, never below zero)
    subtotal + taxes = total             (taxes rounded half-up once, on the subtotal)
    total - prepaid credits - credit balance = payable   (at finalization)
    payable - paid - offset by credit notes = amount due

The API, the admin, the PDF and the reconciliation with Lago read these fields; none of
them recomputes a total its own way."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from billing.invoicing.models import Invoice, InvoiceLine
from billing.invoicing.rating import Fee

COUPON = InvoiceLine.FeeType.COUPON


@dataclass(frozen=True)
class Totals:
    fees_amount_cents: int
    coupons_amount_cents: int
    subtotal_amount_cents: int
    tax_rate: Decimal
    taxes_amount_cents: int
    total_amount_cents: int

    def apply_to(self, invoice: Invoice) -> None:
        invoice.fees_amount_cents = self.fees_amount_cents
        invoice.coupons_amount_cents = self.coupons_amount_cents
        invoice.subtotal_amount_cents = self.subtotal_amount_cents
        invoice.tax_rate = self.tax_rate
        invoice.taxes_amount_cents = self.taxes_amount_cents
        invoice.total_amount_cents = self.total_amount_cents


def taxes_on(subtotal: int, tax_rate: Decimal) -> int:
    return int(
        (Decimal(subtotal) * Decimal(tax_rate) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    )


def totals_of(*, fees: Sequence[Fee], tax_rate: Decimal) -> Totals:
    """The totals of a draft's lines: coupon lines (negative amounts) are the coupons;
    every other line is a fee."""
    return totals_from(
        fees_cents=sum(fee.amount_cents for fee in fees if fee.fee_type != COUPON),
        coupons_cents=-sum(fee.amount_cents for fee in fees if fee.fee_type == COUPON),
        tax_rate=tax_rate,
    )


def totals_from(*, fees_cents: int, coupons_cents: int, tax_rate: Decimal) -> Totals:
    subtotal = fees_cents - coupons_cents
    taxes = taxes_on(subtotal, tax_rate)
    return Totals(
        fees_amount_cents=fees_cents,
        coupons_amount_cents=coupons_cents,
        subtotal_amount_cents=subtotal,
        tax_rate=Decimal(tax_rate),
        taxes_amount_cents=taxes,
        total_amount_cents=subtotal + taxes,
    )


def totals_of_remote(*, fees: int, coupons: int, taxes: int, tax_rate: Decimal) -> Totals:
    """Totals as an engine of record (Lago) computed them, taken as they are."""
    subtotal = fees - coupons
    return Totals(
        fees_amount_cents=fees,
        coupons_amount_cents=coupons,
        subtotal_amount_cents=subtotal,
        tax_rate=Decimal(tax_rate),
        taxes_amount_cents=taxes,
        total_amount_cents=subtotal + taxes,
    )


def totals_shown(invoice: Invoice) -> list[tuple[str, int, bool]]:
    """The invoice's totals as people read them, in the one order: (label, minor units,
    whether it is a grand line). Optional steps show only when they moved money; the
    PDF and the admin both print this list."""
    rows: list[tuple[str, int, bool]] = []
    if invoice.coupons_amount_cents:
        rows.append(("Fees", invoice.fees_amount_cents, False))
        rows.append(("Coupons", -invoice.coupons_amount_cents, False))
    rows.append(("Subtotal", invoice.subtotal_amount_cents, False))
    rows.append((f"Tax ({invoice.tax_rate}%)", invoice.taxes_amount_cents, False))
    rows.append(("Total", invoice.total_amount_cents, True))
    if invoice.prepaid_credit_amount_cents:
        rows.append(("Prepaid credits applied", -invoice.prepaid_credit_amount_cents, False))
    if invoice.credit_balance_amount_cents:
        rows.append(("Credit balance applied", -invoice.credit_balance_amount_cents, False))
    if invoice.prepaid_credit_amount_cents or invoice.credit_balance_amount_cents:
        rows.append(("Payable", invoice.payable_amount_cents, True))
    if invoice.paid_amount_cents:
        rows.append(("Paid", -invoice.paid_amount_cents, False))
    if invoice.offset_amount_cents:
        rows.append(("Credit notes offset", -invoice.offset_amount_cents, False))
    if invoice.credited_amount_cents:
        rows.append(("Credited by credit notes (in all)", invoice.credited_amount_cents, False))
    if invoice.refunded_amount_cents:
        rows.append(("Refunded to the card", invoice.refunded_amount_cents, False))
    if invoice.status == Invoice.Status.FINALIZED:
        rows.append(("Amount due", invoice.amount_due_cents, True))
    return rows
