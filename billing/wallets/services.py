"""Wallets: prepaid credits a customer is granted or buys, taken off invoices at
finalization before the card is charged (Lago's Credits::AppliedPrepaidCreditsService),
oldest wallet first. Every movement is a ledger entry; the database keeps the balance
(the entries' sum) and refuses an overdraft, and each consuming transaction locks the
wallets it reads, so two finalizations cannot spend one credit twice.

Credits and money: one credit is worth `rate_amount` in the currency's major units;
amounts are kept in minor units, credits shown as minor units / (rate x 10^exponent)."""

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from billing.wallets.models import Wallet, WalletTransaction
from core.exceptions import Conflict, UnprocessableEntity
from core.iso import currency_exponent
from customers.models import Customer

K = WalletTransaction.Kind


def cents_of(wallet: Wallet, credits: Decimal) -> int:
    scale = Decimal(10) ** currency_exponent(wallet.currency)
    return int((credits * wallet.rate_amount * scale).quantize(Decimal(1), ROUND_HALF_UP))


def credits_of(wallet: Wallet, cents: int) -> Decimal:
    scale = Decimal(10) ** currency_exponent(wallet.currency)
    return (Decimal(cents) / scale / wallet.rate_amount).quantize(Decimal("0.000001"))


def _entry(
    wallet: Wallet, kind: str, cents: int, invoice_id: Any = None, note: str = ""
) -> WalletTransaction:
    return WalletTransaction.objects.create(
        wallet=wallet,
        kind=kind,
        amount_cents=cents,
        credits=credits_of(wallet, abs(cents)),
        invoice_id=invoice_id,
        note=note[:255],
    )


@transaction.atomic
def wallet_create(
    *,
    customer: Customer,
    currency: str,
    name: str = "",
    rate_amount: Decimal = Decimal(1),
    granted_credits: Decimal = Decimal(0),
    expiration_at: datetime | None = None,
    top_up_threshold_credits: Decimal | None = None,
    top_up_paid_credits: Decimal | None = None,
    top_up_granted_credits: Decimal | None = None,
) -> Wallet:
    if currency != customer.currency:
        raise UnprocessableEntity(
            f"Customer '{customer.external_id}' is billed in {customer.currency}, not {currency}.",
            code="currency_mismatch",
            attr="currency",
        )
    if top_up_threshold_credits is not None and not (top_up_paid_credits or top_up_granted_credits):
        raise UnprocessableEntity(
            "An automatic top-up needs paid or granted credits to add.",
            code="invalid_top_up_rule",
            attr="top_up_threshold_credits",
        )
    wallet = Wallet.objects.create(
        customer=customer,
        currency=currency,
        name=name,
        rate_amount=rate_amount,
        expiration_at=expiration_at,
        top_up_threshold_credits=top_up_threshold_credits,
        top_up_paid_credits=top_up_paid_credits if top_up_threshold_credits is not None else None,
        top_up_granted_credits=top_up_granted_credits
        if top_up_threshold_credits is not None
        else None,
    )
    if granted_credits:
        wallet_grant(wallet=wallet, credits=granted_credits)
        wallet.refresh_from_db()  # the balance is the ledger trigger's
    return wallet


def _active(wallet: Wallet) -> Wallet:
    locked = Wallet.objects.select_for_update().get(pk=wallet.pk)
    if locked.status != Wallet.Status.ACTIVE:
        raise Conflict(f"Wallet {locked.pk} is terminated.", code="wallet_terminated")
    return locked


@transaction.atomic
def wallet_grant(*, wallet: Wallet, credits: Decimal, note: str = "") -> WalletTransaction:
    """Free credits (a goodwill gesture, a trial allowance)."""
    locked = _active(wallet)
    cents = cents_of(locked, credits)
    if cents <= 0:
        raise UnprocessableEntity(
            "The credits granted are worth less than one minor unit.",
            code="invalid_credits",
            attr="credits",
        )
    return _entry(locked, K.GRANT, cents, note=note or "granted")


@transaction.atomic
def wallet_purchased(*, wallet_id: UUID | str, invoice_id: Any, amount_cents: int) -> bool:
    """A top-up invoice was paid: its credits reach the wallet, once (a unique index on
    the purchase's invoice). False when they had already."""
    wallet = Wallet.objects.select_for_update().get(pk=wallet_id)
    if WalletTransaction.objects.filter(kind=K.PURCHASE, invoice_id=invoice_id).exists():
        return False
    _entry(wallet, K.PURCHASE, amount_cents, invoice_id=invoice_id, note="top-up paid")
    return True


@transaction.atomic
def wallet_terminate(*, wallet: Wallet) -> Wallet:
    """No more credits go in or out; what is left expires."""
    locked = _active(wallet)
    if locked.balance_cents:
        _entry(locked, K.EXPIRY, -locked.balance_cents, note="terminated")
        locked.refresh_from_db()
    locked.status, locked.terminated_at = Wallet.Status.TERMINATED, timezone.now()
    locked.save(update_fields=["status", "terminated_at", "updated_at"])
    return locked


@transaction.atomic
def credit_from_invoice(
    *, customer: Customer, currency: str, amount_cents: int, invoice_id: Any
) -> Wallet:
    """What a negative invoice owes the customer goes to their credits (their oldest
    active wallet in the currency, or a new "Credit balance" wallet at 1 credit = 1 unit),
    to be taken off their next invoices."""
    wallet = (
        Wallet.objects.select_for_update()
        .filter(customer=customer, currency=currency, status=Wallet.Status.ACTIVE)
        .order_by("created_at", "id")
        .first()
    ) or Wallet.objects.create(customer=customer, currency=currency, name="Credit balance")
    _entry(wallet, K.GRANT, amount_cents, invoice_id=invoice_id, note="negative invoice")
    return wallet


def wallets_expire(*, now: datetime | None = None) -> int:
    """The beat's sweep: wallets past their expiration lose what is left."""
    now = now or timezone.now()
    done = 0
    for wallet in Wallet.objects.filter(status=Wallet.Status.ACTIVE, expiration_at__lte=now):
        wallet_terminate(wallet=wallet)
        done += 1
    return done


def credits_consume(*, customer_id: Any, currency: str, amount_cents: int, invoice_id: Any) -> int:
    """Take up to `amount_cents` of prepaid credits for an invoice being finalized (in the
    caller's transaction), oldest wallet first; returns what was taken."""
    if amount_cents <= 0:
        return 0
    now = timezone.now()
    taken = 0
    wallets = (
        Wallet.objects.select_for_update()
        .filter(
            customer_id=customer_id,
            currency=currency,
            status=Wallet.Status.ACTIVE,
            balance_cents__gt=0,
        )
        .order_by("created_at", "id")
    )
    for wallet in wallets:
        if wallet.expiration_at is not None and wallet.expiration_at <= now:
            continue
        take = min(wallet.balance_cents, amount_cents - taken)
        if take <= 0:
            break
        _entry(wallet, K.CONSUMPTION, -take, invoice_id=invoice_id, note="invoice")
        taken += take
    return taken


def credits_recredit(*, invoice_id: Any) -> int:
    """What an invoice being voided consumed of prepaid credits, given back to the wallets
    it came from (Lago's WalletTransactions::RecreditService), in the caller's transaction
    holding the invoice; once, however often asked. Returns what was given back."""
    if WalletTransaction.objects.filter(invoice_id=invoice_id, kind=K.RECREDIT).exists():
        return 0
    given = 0
    consumed = WalletTransaction.objects.filter(invoice_id=invoice_id, kind=K.CONSUMPTION)
    for entry in consumed.order_by("id"):
        wallet = Wallet.objects.select_for_update().get(pk=entry.wallet_id)
        _entry(
            wallet, K.RECREDIT, -entry.amount_cents, invoice_id=invoice_id, note="invoice voided"
        )
        given -= entry.amount_cents
    return given


def balance(*, customer_id: Any, currency: str) -> int:
    wallets = Wallet.objects.filter(
        customer_id=customer_id, currency=currency, status=Wallet.Status.ACTIVE
    )
    return sum(wallets.values_list("balance_cents", flat=True))
