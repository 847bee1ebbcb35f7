"""Add-ons and one-off invoices (Lago's): a catalog of one-off charges, and an invoice of
some of them for a customer, outside any subscription, issued at once and collected like
the rest. Each line is `units` times the add-on's amount (or the amount given for this
invoice), rounded half-up once; the totals are billing/invoicing/totals.py's."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.invoicing.lago_corrections import ADD_ON_DELETE, ONE_OFF_CREATE
from billing.invoicing.models import AddOn, Invoice, InvoiceLine
from billing.invoicing.services import invoice_finalize
from billing.invoicing.totals import Totals, totals_from
from billing.sync.outbox import object_type_of, outbox_record
from core.exceptions import Conflict, UnprocessableEntity
from core.iso import currency_exponent
from core.limits import MAX_FEE_CENTS
from customers.models import Customer


@dataclass(frozen=True)
class OneOffFee:
    add_on: AddOn
    units: Decimal = Decimal(1)
    unit_amount_cents: int | None = None
    description: str = ""


@transaction.atomic
def add_on_create(**data: Any) -> AddOn:
    if AddOn.objects.filter(code=data["code"]).exists():
        raise Conflict(f"An add-on with code '{data['code']}' exists.", code="add_on_exists")
    return AddOn.objects.create(**data)


@transaction.atomic
def add_on_update(*, add_on: AddOn, **data: Any) -> AddOn:
    locked = AddOn.objects.select_for_update().get(pk=add_on.pk)
    for field, value in data.items():
        if field != "code":
            setattr(locked, field, value)
    locked.save()
    return locked


@transaction.atomic
def add_on_delete(*, add_on: AddOn) -> None:
    """Removed from the catalog; invoices keep their lines (a copy of what was billed)."""
    AddOn.objects.filter(pk=add_on.pk).delete()
    outbox_record(action=ADD_ON_DELETE, object_type=object_type_of(add_on), object_id=add_on.code)


def _unit_cents(fee: OneOffFee) -> int:
    return fee.unit_amount_cents if fee.unit_amount_cents is not None else fee.add_on.amount_cents


def _line_amount(fee: OneOffFee) -> tuple[int, Decimal]:
    unit_cents = _unit_cents(fee)
    amount = int((fee.units * Decimal(unit_cents)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if amount > MAX_FEE_CENTS:
        raise UnprocessableEntity(
            f"Add-on '{fee.add_on.code}': {amount} minor units is beyond what one line may bill.",
            code="amount_too_large",
            attr="fees",
        )
    exponent = currency_exponent(fee.add_on.amount_currency)
    return amount, Decimal(unit_cents) / (Decimal(10) ** exponent)


@dataclass(frozen=True)
class OneOffQuote:
    """What a one-off invoice of these fees would bill: each fee with its line's amount
    and unit amount, and the totals. Shown to staff before they confirm."""

    lines: list[tuple[OneOffFee, int, Decimal]]
    totals: Totals


def one_off_quote(*, customer: Customer, currency: str, fees: list[OneOffFee]) -> OneOffQuote:
    if not fees:
        raise UnprocessableEntity("Give at least one fee.", code="no_fees", attr="fees")
    if currency != customer.currency:
        raise UnprocessableEntity(
            f"Customer '{customer.external_id}' is billed in {customer.currency}, not {currency}.",
            code="currency_mismatch",
            attr="currency",
        )
    for fee in fees:
        if fee.add_on.amount_currency != currency and fee.unit_amount_cents is None:
            raise UnprocessableEntity(
                f"Add-on '{fee.add_on.code}' is priced in {fee.add_on.amount_currency}: give "
                f"its unit_amount_cents in {currency}.",
                code="currency_mismatch",
                attr="fees",
            )
    priced = [(fee, *_line_amount(fee)) for fee in fees]
    fees_cents = sum(amount for _, amount, _ in priced)
    totals = totals_from(fees_cents=fees_cents, coupons_cents=0, tax_rate=customer.tax_rate)
    return OneOffQuote(lines=priced, totals=totals)


@transaction.atomic
def one_off_invoice_create(*, customer: Customer, currency: str, fees: list[OneOffFee]) -> Invoice:
    """The one-off invoice of these add-ons, issued (numbered) at once; collection
    follows as for any invoice.

    With Lago the engine of record, Lago issues it: the draft returned here is sent
    through the outbox (`POST /invoices`) and becomes Lago's invoice when mirrored."""
    quote = one_off_quote(customer=customer, currency=currency, fees=fees)
    priced = quote.lines
    now = timezone.now()
    by_lago = settings.BILLING_ENGINE == "lago"
    invoice = Invoice(
        engine=Invoice.Engine.LAGO if by_lago else Invoice.Engine.LOCAL,
        customer=customer,
        subscription=None,
        invoice_type=Invoice.InvoiceType.ONE_OFF,
        period_start=now,
        period_end=now,
        currency=currency,
    )
    quote.totals.apply_to(invoice)
    invoice.save(force_insert=True)
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=position,
            fee_type=InvoiceLine.FeeType.ADD_ON,
            description=(fee.description or fee.add_on.invoice_display_name or fee.add_on.name)[
                :255
            ],
            properties={"add_on_code": fee.add_on.code, "unit_amount_cents": _unit_cents(fee)},
            units=fee.units,
            unit_amount=unit_amount,
            amount_cents=amount,
            from_datetime=now,
            to_datetime=now,
        )
        for position, (fee, amount, unit_amount) in enumerate(priced, start=1)
    )
    if by_lago:
        outbox_record(
            action=ONE_OFF_CREATE, object_type=object_type_of(invoice), object_id=str(invoice.pk)
        )
        return invoice
    return invoice_finalize(invoice=invoice)
