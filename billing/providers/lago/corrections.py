"""Lago's coupons, add-ons, wallets and credit notes, kept equal to ours by the outbox.

Lago's create calls take no idempotency key. Each create here has a finder beside it
(by code, by name, by the metadata we sent) so that a handler retried after a lost answer
adopts what the first try made instead of making it twice.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from billing.providers.base import (
    AddOnData,
    AppliedCouponData,
    CouponData,
    CreditNoteData,
    LagoCreditNote,
    LagoInvoice,
    LagoRef,
    OneOffFeeData,
    ProviderError,
    WalletData,
)
from billing.providers.lago.client import (
    int_of,
    iso,
    lago_id_of,
    malformed,
    object_in,
    request,
    segment,
    text_of,
)
from billing.providers.lago.invoices import parse_invoice

METADATA_KEY = "credit_note_id"


def _ref(obj: dict[str, Any], what: str) -> LagoRef:
    return LagoRef(
        lago_id=lago_id_of(obj, what),
        code=text_of(obj.get("code") or obj.get("coupon_code")),
        name=text_of(obj.get("name")),
        status=text_of(obj.get("status")),
    )


def _gone(error: ProviderError) -> bool:
    """A delete that finds nothing: what it wanted is already so."""
    return error.http_status == 404


def _rate(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _pages(path: str, key: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page: int | None = 1
    while page:
        body = request("GET", path, params={**params, "page": page, "per_page": 100})
        found = body.get(key)
        if not isinstance(found, list):
            raise malformed(f"{key}: no list")
        items.extend(item for item in found if isinstance(item, dict))
        page = (body.get("meta") or {}).get("next_page")
    return items


# --- Coupons ------------------------------------------------------------------------------
def coupon_upsert(*, coupon: CouponData, exists: bool) -> LagoRef:
    payload = {
        "name": coupon.name,
        "code": coupon.code,
        "description": coupon.description or None,
        "coupon_type": coupon.coupon_type,
        "amount_cents": coupon.amount_cents,
        "amount_currency": coupon.amount_currency,
        "percentage_rate": _rate(coupon.percentage_rate),
        "reusable": coupon.reusable,
        "frequency": coupon.frequency,
        "frequency_duration": coupon.frequency_duration,
        "expiration": "time_limit" if coupon.expiration_at else "no_expiration",
        "expiration_at": iso(coupon.expiration_at),
    }
    if exists:
        body = request("PUT", f"coupons/{segment(coupon.code)}", body={"coupon": payload})
    else:
        try:
            body = request("POST", "coupons", body={"coupon": payload})
        except ProviderError as error:
            if error.http_status != 422:
                raise
            # Made by a try whose answer was lost: bring it up to date instead.
            body = request("PUT", f"coupons/{segment(coupon.code)}", body={"coupon": payload})
    return _ref(object_in(body, "coupon"), "coupon")


def coupon_terminate(*, code: str) -> None:
    try:
        request("DELETE", f"coupons/{segment(code)}")
    except ProviderError as error:
        if not _gone(error):
            raise


def applied_coupons(*, external_customer_id: str, coupon_code: str) -> list[LagoRef]:
    """The customer's active applications of one coupon."""
    items = _pages(
        "applied_coupons",
        "applied_coupons",
        {
            "external_customer_id": external_customer_id,
            "status": "active",
            "coupon_code[]": [coupon_code],
        },
    )
    return [_ref(item, "applied coupon") for item in items]


def coupon_apply(*, applied: AppliedCouponData) -> LagoRef:
    payload: dict[str, Any] = {
        "external_customer_id": applied.external_customer_id,
        "coupon_code": applied.coupon_code,
        "frequency": applied.frequency,
        "frequency_duration": applied.frequency_duration,
    }
    if applied.amount_cents is not None:
        payload["amount_cents"] = applied.amount_cents
        payload["amount_currency"] = applied.amount_currency
    if applied.percentage_rate is not None:
        payload["percentage_rate"] = _rate(applied.percentage_rate)
    body = request("POST", "applied_coupons", body={"applied_coupon": payload})
    return _ref(object_in(body, "applied_coupon"), "applied coupon")


def applied_coupon_terminate(*, external_customer_id: str, lago_id: str) -> None:
    path = f"customers/{segment(external_customer_id)}/applied_coupons/{segment(lago_id)}"
    try:
        request("DELETE", path)
    except ProviderError as error:
        if not _gone(error):
            raise


# --- Add-ons and one-off invoices ---------------------------------------------------------
def add_on_upsert(*, add_on: AddOnData, exists: bool) -> LagoRef:
    payload = {
        "name": add_on.name,
        "invoice_display_name": add_on.invoice_display_name or None,
        "code": add_on.code,
        "amount_cents": add_on.amount_cents,
        "amount_currency": add_on.amount_currency,
        "description": add_on.description or None,
    }
    if exists:
        body = request("PUT", f"add_ons/{segment(add_on.code)}", body={"add_on": payload})
    else:
        try:
            body = request("POST", "add_ons", body={"add_on": payload})
        except ProviderError as error:
            if error.http_status != 422:
                raise
            body = request("PUT", f"add_ons/{segment(add_on.code)}", body={"add_on": payload})
    return _ref(object_in(body, "add_on"), "add-on")


def add_on_delete(*, code: str) -> None:
    try:
        request("DELETE", f"add_ons/{segment(code)}")
    except ProviderError as error:
        if not _gone(error):
            raise


def invoice_one_off_create(
    *, external_customer_id: str, currency: str, fees: tuple[OneOffFeeData, ...]
) -> LagoInvoice:
    payload = {
        "external_customer_id": external_customer_id,
        "currency": currency,
        "fees": [
            {
                "add_on_code": fee.add_on_code,
                "units": format(fee.units, "f"),
                "unit_amount_cents": fee.unit_amount_cents,
                "description": fee.description or None,
            }
            for fee in fees
        ],
    }
    body = request("POST", "invoices", body={"invoice": payload})
    return parse_invoice(object_in(body, "invoice"))


def one_off_invoices(*, external_customer_id: str, since: datetime) -> list[LagoInvoice]:
    """The customer's one-off invoices issued at or after `since`, to find one a lost
    answer made."""
    items = _pages(
        "invoices",
        "invoices",
        {
            "external_customer_id": external_customer_id,
            "invoice_type": "one_off",
            "issuing_date_from": since.date().isoformat(),
        },
    )
    return [parse_invoice(item) for item in items]


# --- Wallets ------------------------------------------------------------------------------
def wallet_find(*, external_customer_id: str, code: str) -> LagoRef | None:
    for item in _pages("wallets", "wallets", {"external_customer_id": external_customer_id}):
        if text_of(item.get("code")) == code:
            return _ref(item, "wallet")
    return None


def wallet_create(*, wallet: WalletData) -> LagoRef:
    payload = {
        "name": wallet.name or None,
        "code": wallet.code,
        "rate_amount": format(wallet.rate_amount.normalize(), "f"),
        "currency": wallet.currency,
        "external_customer_id": wallet.external_customer_id,
        "expiration_at": iso(wallet.expiration_at),
    }
    body = request("POST", "wallets", body={"wallet": payload})
    return _ref(object_in(body, "wallet"), "wallet")


def wallet_terminate(*, lago_id: str) -> None:
    try:
        request("DELETE", f"wallets/{segment(lago_id)}")
    except ProviderError as error:
        if not _gone(error):
            raise


def wallet_transaction_find(*, wallet_lago_id: str, name: str) -> LagoRef | None:
    path = f"wallets/{segment(wallet_lago_id)}/wallet_transactions"
    for item in _pages(path, "wallet_transactions", {}):
        if text_of(item.get("name")) == name:
            return _ref(item, "wallet transaction")
    return None


def wallet_credits_grant(*, wallet_lago_id: str, credits: Decimal, name: str) -> LagoRef:
    """Credits added to a Lago wallet without an invoice from Lago (ours collected any
    payment): Lago's granted credits, named so a retry finds them."""
    payload = {
        "wallet_id": wallet_lago_id,
        "name": name,
        "granted_credits": format(credits.normalize(), "f"),
    }
    body = request("POST", "wallet_transactions", body={"wallet_transaction": payload})
    items = body.get("wallet_transactions")
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        raise malformed("wallet_transactions: no list")
    return _ref(items[0], "wallet transaction")


# --- Credit notes -------------------------------------------------------------------------
def _credit_note(obj: dict[str, Any]) -> LagoCreditNote:
    metadata = obj.get("metadata")
    return LagoCreditNote(
        lago_id=lago_id_of(obj, "credit note"),
        number=text_of(obj.get("number")),
        credit_note_id=text_of((metadata or {}).get(METADATA_KEY))
        if isinstance(metadata, dict)
        else "",
        total_amount_cents=int_of(obj.get("total_amount_cents"), "credit note total"),
        credit_status=text_of(obj.get("credit_status")),
    )


def credit_note_find(*, external_customer_id: str, credit_note_id: str) -> LagoCreditNote | None:
    items = _pages("credit_notes", "credit_notes", {"external_customer_id": external_customer_id})
    for item in items:
        note = _credit_note(item)
        if note.credit_note_id == credit_note_id:
            return note
    return None


def credit_note_create(*, credit_note: CreditNoteData) -> LagoCreditNote:
    payload = {
        "invoice_id": credit_note.invoice_lago_id,
        "reason": credit_note.reason,
        "description": credit_note.description,
        "credit_amount_cents": credit_note.credit_amount_cents,
        "refund_amount_cents": credit_note.refund_amount_cents,
        "offset_amount_cents": credit_note.offset_amount_cents,
        "items": [
            {"fee_id": fee_id, "amount_cents": amount} for fee_id, amount in credit_note.items
        ],
        "metadata": {METADATA_KEY: credit_note.credit_note_id},
    }
    body = request("POST", "credit_notes", body={"credit_note": payload})
    return _credit_note(object_in(body, "credit_note"))


def credit_note_void(*, lago_id: str) -> LagoCreditNote:
    body = request("PUT", f"credit_notes/{segment(lago_id)}/void")
    return _credit_note(object_in(body, "credit_note"))
