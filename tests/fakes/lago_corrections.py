"""FakeLago's coupons, applied coupons, add-ons, wallets, credit notes and one-off
invoices, and what Lago does with them when it finalizes an invoice: coupons off the fees
(in the order they were applied), then the credit notes' credit, then prepaid credits.

Kept apart from lago.py for size; `install` binds these onto FakeLago. Each answer is the
object Lago's serializer writes, and every request and answer goes through the spec check
of lago.py like the rest.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

ROUTES = [
    ("POST", "/coupons", "create_coupon"),
    ("GET", "/coupons/<code>", "get_coupon"),
    ("PUT", "/coupons/<code>", "update_coupon"),
    ("DELETE", "/coupons/<code>", "delete_coupon"),
    ("POST", "/applied_coupons", "apply_coupon"),
    ("GET", "/applied_coupons", "list_applied_coupons"),
    (
        "DELETE",
        "/customers/<external_customer_id>/applied_coupons/<applied_coupon_id>",
        "terminate_applied_coupon",
    ),
    ("POST", "/add_ons", "create_add_on"),
    ("PUT", "/add_ons/<code>", "update_add_on"),
    ("DELETE", "/add_ons/<code>", "delete_add_on"),
    ("POST", "/wallets", "create_wallet"),
    ("GET", "/wallets", "list_wallets"),
    ("DELETE", "/wallets/<lago_id>", "terminate_wallet"),
    ("POST", "/wallet_transactions", "create_wallet_transaction"),
    ("GET", "/wallets/<lago_id>/wallet_transactions", "list_wallet_transactions"),
    ("POST", "/credit_notes", "create_credit_note"),
    ("GET", "/credit_notes", "list_credit_notes"),
    ("PUT", "/credit_notes/<lago_id>/void", "void_credit_note"),
    ("POST", "/invoices", "create_one_off_invoice"),
]

COUPON_KEYS = (
    "name",
    "code",
    "description",
    "coupon_type",
    "amount_cents",
    "amount_currency",
    "reusable",
    "percentage_rate",
    "frequency",
    "frequency_duration",
    "expiration",
    "expiration_at",
)


def install(cls: type, helpers: Any) -> None:
    """Bind the handlers onto FakeLago; `helpers` is lago.py's module (its _now, _iso,
    _uuid, _ApiError, _not_found, _invalid, _error and _paginate)."""
    h = helpers

    def _corrections_reset(self) -> None:
        self._coupons: dict[str, dict] = {}
        self._applied_coupons: list[dict] = []
        self._add_ons: dict[str, dict] = {}
        self._wallets: dict[str, dict] = {}
        self._wallet_transactions: list[dict] = []
        self._credit_notes: list[dict] = []
        self._credited: dict[str, int] = {}  # fee lago_id -> credited so far

    # -- what tests inspect ------------------------------------------------------------
    def coupons(self) -> dict[str, dict]:
        with self._lock:
            return dict(self._coupons)

    def applied_coupons(self) -> list[dict]:
        with self._lock:
            return list(self._applied_coupons)

    def wallets(self) -> dict[str, dict]:
        with self._lock:
            return dict(self._wallets)

    def wallet_transactions(self) -> list[dict]:
        with self._lock:
            return list(self._wallet_transactions)

    def credit_notes(self) -> list[dict]:
        with self._lock:
            return list(self._credit_notes)

    def add_ons(self) -> dict[str, dict]:
        with self._lock:
            return dict(self._add_ons)

    # -- coupons -------------------------------------------------------------------------
    def _find_coupon(self, code: str) -> dict:
        coupon = self._coupons.get(code)
        if coupon is None or coupon["terminated_at"]:
            raise h._not_found("coupon")
        return coupon

    def _create_coupon(self, request):
        data = self._body(request, "coupon")
        existing = self._coupons.get(data["code"])
        if existing is not None and not existing["terminated_at"]:
            raise h._invalid({"code": ["value_already_exist"]})
        coupon = {
            "lago_id": h._uuid(),
            "limited_plans": False,
            "plan_codes": [],
            "limited_billable_metrics": False,
            "billable_metric_codes": [],
            "created_at": h._iso(h._now()),
            "terminated_at": None,
            "description": None,
            "amount_cents": None,
            "amount_currency": None,
            "percentage_rate": None,
            "frequency_duration": None,
            "expiration_at": None,
            "reusable": True,
            "expiration": "no_expiration",
        }
        coupon.update({k: v for k, v in data.items() if k in COUPON_KEYS})
        self._coupons[coupon["code"]] = coupon
        return 200, {"coupon": coupon}

    def _get_coupon(self, request, code: str):
        return 200, {"coupon": self._find_coupon(code)}

    def _update_coupon(self, request, code: str):
        coupon = self._find_coupon(code)
        data = self._body(request, "coupon")
        coupon.update({k: v for k, v in data.items() if k in COUPON_KEYS and k != "code"})
        return 200, {"coupon": coupon}

    def _delete_coupon(self, request, code: str):
        coupon = self._find_coupon(code)
        now = h._iso(h._now())
        coupon["terminated_at"] = now
        for applied in self._applied_coupons:
            if applied["coupon_code"] == code and applied["status"] == "active":
                applied.update(status="terminated", terminated_at=now, coupon_status="terminated")
        return 200, {"coupon": coupon}

    def _apply_coupon(self, request):
        data = self._body(request, "applied_coupon")
        customer = self._find_customer(data["external_customer_id"])
        coupon = self._find_coupon(data["coupon_code"])
        held = [
            a
            for a in self._applied_coupons
            if a["external_customer_id"] == customer["external_id"]
            and a["coupon_code"] == coupon["code"]
            and a["status"] == "active"
        ]
        if held and not coupon["reusable"]:
            raise h._invalid({"coupon": ["coupon_is_not_reusable"]})
        fixed = coupon["coupon_type"] == "fixed_amount"
        amount = data.get("amount_cents", coupon["amount_cents"]) if fixed else None
        frequency = data.get("frequency") or coupon["frequency"]
        duration = data.get("frequency_duration", coupon["frequency_duration"])
        applied = {
            "lago_id": h._uuid(),
            "lago_coupon_id": coupon["lago_id"],
            "coupon_code": coupon["code"],
            "coupon_name": coupon["name"],
            "coupon_status": "active",
            "lago_customer_id": customer["lago_id"],
            "external_customer_id": customer["external_id"],
            "status": "active",
            "amount_cents": amount,
            "amount_cents_remaining": amount if fixed and frequency == "once" else None,
            "amount_currency": data.get("amount_currency", coupon["amount_currency"]),
            "percentage_rate": None
            if fixed
            else data.get("percentage_rate") or coupon["percentage_rate"],
            "frequency": frequency,
            "frequency_duration": duration,
            "frequency_duration_remaining": duration if frequency == "recurring" else None,
            "expiration_at": coupon["expiration_at"],
            "created_at": h._iso(h._now()),
            "terminated_at": None,
        }
        self._applied_coupons.append(applied)
        return 200, {"applied_coupon": applied}

    def _list_applied_coupons(self, request):
        customer = request.args.get("external_customer_id")
        status = request.args.get("status")
        codes = request.args.getlist("coupon_code[]")
        # The list shows each application with the credits it gave (none are faked).
        items = [
            {**a, "credits": []}
            for a in reversed(self._applied_coupons)
            if (not customer or a["external_customer_id"] == customer)
            and (not status or a["status"] == status)
            and (not codes or a["coupon_code"] in codes)
        ]
        return 200, h._paginate(request, "applied_coupons", items)

    def _terminate_applied_coupon(self, request, external_customer_id: str, applied_coupon_id):
        for applied in self._applied_coupons:
            if (
                applied["lago_id"] == applied_coupon_id
                and applied["external_customer_id"] == external_customer_id
                and applied["status"] == "active"
            ):
                applied.update(status="terminated", terminated_at=h._iso(h._now()))
                return 200, {"applied_coupon": applied}
        raise h._not_found("applied_coupon")

    # -- add-ons and one-off invoices --------------------------------------------------------
    def _find_add_on(self, code: str) -> dict:
        if code not in self._add_ons:
            raise h._not_found("add_on")
        return self._add_ons[code]

    def _take_add_on(self, add_on: dict, data: dict) -> None:
        for key in (
            "name",
            "invoice_display_name",
            "code",
            "amount_cents",
            "amount_currency",
            "description",
        ):
            if key in data:
                add_on[key] = data[key]

    def _create_add_on(self, request):
        data = self._body(request, "add_on")
        if data["code"] in self._add_ons:
            raise h._invalid({"code": ["value_already_exist"]})
        add_on = {
            "lago_id": h._uuid(),
            "invoice_display_name": None,
            "description": None,
            "created_at": h._iso(h._now()),
            "taxes": [],
        }
        self._take_add_on(add_on, data)
        self._add_ons[add_on["code"]] = add_on
        return 200, {"add_on": add_on}

    def _update_add_on(self, request, code: str):
        add_on = self._find_add_on(code)
        self._take_add_on(add_on, self._body(request, "add_on"))
        return 200, {"add_on": add_on}

    def _delete_add_on(self, request, code: str):
        return 200, {"add_on": self._add_ons.pop(self._find_add_on(code)["code"])}

    def _create_one_off_invoice(self, request):
        data = self._body(request, "invoice")
        customer = self._find_customer(data["external_customer_id"])
        currency = data.get("currency") or customer["currency"] or "USD"
        fees = []
        for item in data["fees"]:
            add_on = self._find_add_on(item["add_on_code"])
            units = Decimal(item.get("units") or "1")
            unit_cents = item.get("unit_amount_cents")
            unit_cents = add_on["amount_cents"] if unit_cents is None else unit_cents
            amount = int((units * unit_cents).quantize(Decimal(1), rounding=ROUND_HALF_UP))
            fees.append(
                {
                    "lago_id": h._uuid(),
                    "item": {
                        "type": "add_on",
                        "code": add_on["code"],
                        "name": add_on["name"],
                        "invoice_display_name": item.get("invoice_display_name")
                        or add_on["invoice_display_name"]
                        or add_on["name"],
                        "lago_item_id": add_on["lago_id"],
                        "item_type": "AddOn",
                    },
                    "pay_in_advance": False,
                    "invoiceable": True,
                    "amount_cents": amount,
                    "amount_currency": currency,
                    "taxes_amount_cents": 0,
                    "taxes_rate": 0,
                    "total_amount_cents": amount,
                    "total_amount_currency": currency,
                    "units": str(units),
                    "total_aggregated_units": str(units),
                    "precise_unit_amount": str(Decimal(unit_cents) / 100),
                    "sub_total_excluding_taxes_amount_cents": amount,
                    "sub_total_excluding_taxes_precise_amount_cents": str(amount),
                    "payment_status": "pending",
                    "description": item.get("description"),
                }
            )
        total = sum(fee["amount_cents"] for fee in fees)
        sequence = len(self._invoices) + 1
        now = h._iso(h._now())
        invoice = {
            "lago_id": h._uuid(),
            "billing_entity_code": None,
            "sequential_id": sequence,
            "number": f"LAG-FAKE-{sequence:03d}",
            "issuing_date": h._now().date().isoformat(),
            "payment_due_date": h._now().date().isoformat(),
            "payment_overdue": False,
            "net_payment_term": 0,
            "invoice_type": "one_off",
            "status": "finalized",
            "payment_status": "pending",
            "currency": currency,
            "fees_amount_cents": total,
            "coupons_amount_cents": 0,
            "credit_notes_amount_cents": 0,
            "sub_total_excluding_taxes_amount_cents": total,
            "taxes_amount_cents": 0,
            "sub_total_including_taxes_amount_cents": total,
            "prepaid_credit_amount_cents": 0,
            "progressive_billing_credit_amount_cents": 0,
            "total_amount_cents": total,
            "version_number": 4,
            "self_billed": False,
            "created_at": now,
            "updated_at": now,
            "customer": customer,
            "metadata": [],
            "applied_taxes": [],
            "billing_periods": [],
            "fees": fees,
        }
        self._apply_credits(invoice)
        self._invoices[invoice["lago_id"]] = invoice
        return 200, {"invoice": invoice}

    # -- what Lago takes off an invoice when it finalizes it ---------------------------------
    def _apply_credits(self, invoice: dict) -> None:
        if invoice["status"] != "finalized":
            return
        external_id = invoice["customer"]["external_id"]
        base = invoice["fees_amount_cents"]
        coupons = 0
        if invoice["invoice_type"] == "subscription":
            for applied in self._applied_coupons:
                if applied["external_customer_id"] != external_id or applied["status"] != "active":
                    continue
                coupons += self._coupon_amount(applied, base - coupons)
        taxes = invoice["taxes_amount_cents"]
        due = base - coupons + taxes
        credit_notes = 0
        for note in self._credit_notes:
            if note["customer_external_id"] != external_id or note["credit_status"] != "available":
                continue
            take = min(note["balance_amount_cents"], due - credit_notes)
            note["balance_amount_cents"] -= take
            if note["balance_amount_cents"] == 0:
                note["credit_status"] = "consumed"
            credit_notes += take
        prepaid = 0
        for wallet in self._wallets.values():
            if wallet["external_customer_id"] != external_id or wallet["status"] != "active":
                continue
            take = min(wallet["balance_cents"], due - credit_notes - prepaid)
            if take > 0:
                self._wallet_move(wallet, -take)
                prepaid += take
        invoice.update(
            coupons_amount_cents=coupons,
            sub_total_excluding_taxes_amount_cents=base - coupons,
            sub_total_including_taxes_amount_cents=due,
            credit_notes_amount_cents=credit_notes,
            prepaid_credit_amount_cents=prepaid,
            total_amount_cents=due - credit_notes - prepaid,
        )
        if invoice["total_amount_cents"] == 0:
            invoice["payment_status"] = "succeeded"

    def _coupon_amount(self, applied: dict, base: int) -> int:
        if base <= 0:
            return 0
        if applied["percentage_rate"] is not None:
            rate = Decimal(str(applied["percentage_rate"]))
            amount = int((base * rate / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        elif applied["amount_cents_remaining"] is not None:
            amount = min(applied["amount_cents_remaining"], base)
            applied["amount_cents_remaining"] -= amount
        else:
            amount = min(applied["amount_cents"], base)
        if applied["frequency"] == "recurring":
            applied["frequency_duration_remaining"] -= 1
            if applied["frequency_duration_remaining"] <= 0:
                applied.update(status="terminated", terminated_at=h._iso(h._now()))
        elif applied["frequency"] == "once" and not applied["amount_cents_remaining"]:
            applied.update(status="terminated", terminated_at=h._iso(h._now()))
        return amount

    # -- wallets ---------------------------------------------------------------------------
    def _wallet_move(self, wallet: dict, cents: int) -> None:
        wallet["balance_cents"] += cents
        credits = Decimal(wallet["balance_cents"]) / 100 / Decimal(wallet["rate_amount"])
        wallet["credits_balance"] = wallet["balance"] = str(credits)
        wallet["ongoing_balance_cents"] = wallet["balance_cents"]
        wallet["credits_ongoing_balance"] = str(credits)
        if cents < 0:
            consumed = Decimal(wallet["consumed_credits"]) + Decimal(-cents) / 100 / Decimal(
                wallet["rate_amount"]
            )
            wallet["consumed_credits"] = str(consumed)
            wallet["last_consumed_credit_at"] = h._iso(h._now())

    def _find_wallet(self, lago_id: str) -> dict:
        if lago_id not in self._wallets:
            raise h._not_found("wallet")
        return self._wallets[lago_id]

    def _create_wallet(self, request):
        data = self._body(request, "wallet")
        customer = self._find_customer(data["external_customer_id"])
        code = data.get("code")
        if code and any(
            w["code"] == code and w["external_customer_id"] == customer["external_id"]
            for w in self._wallets.values()
        ):
            raise h._invalid({"code": ["value_already_exist"]})
        if customer["currency"] and customer["currency"] != data["currency"]:
            raise h._invalid({"currency": ["currencies_does_not_match"]})
        customer["currency"] = data["currency"]
        wallet = {
            "lago_id": h._uuid(),
            "lago_customer_id": customer["lago_id"],
            "external_customer_id": customer["external_id"],
            "status": "active",
            "currency": data["currency"],
            "name": data.get("name"),
            "code": code,
            "priority": 50,
            "rate_amount": data["rate_amount"],
            "credits_balance": "0",
            "balance": "0",
            "balance_cents": 0,
            "consumed_credits": "0",
            "created_at": h._iso(h._now()),
            "expiration_at": data.get("expiration_at"),
            "last_balance_sync_at": None,
            "last_consumed_credit_at": None,
            "terminated_at": None,
            "invoice_requires_successful_payment": False,
            "applies_to": {"fee_types": [], "billable_metric_codes": []},
            "recurring_transaction_rules": [],
            "ongoing_balance_cents": 0,
            "ongoing_usage_balance_cents": 0,
            "credits_ongoing_balance": "0",
            "credits_ongoing_usage_balance": "0",
        }
        self._wallets[wallet["lago_id"]] = wallet
        return 200, {"wallet": wallet}

    def _list_wallets(self, request):
        customer = request.args.get("external_customer_id")
        items = [
            w
            for w in reversed(self._wallets.values())
            if not customer or w["external_customer_id"] == customer
        ]
        return 200, h._paginate(request, "wallets", items)

    def _terminate_wallet(self, request, lago_id: str):
        wallet = self._find_wallet(lago_id)
        wallet.update(status="terminated", terminated_at=h._iso(h._now()))
        return 200, {"wallet": wallet}

    def _create_wallet_transaction(self, request):
        data = self._body(request, "wallet_transaction")
        wallet = self._find_wallet(data["wallet_id"])
        if wallet["status"] != "active":
            raise h._invalid({"wallet_id": ["wallet_is_terminated"]})
        made = []
        for kind, status in (("paid_credits", "purchased"), ("granted_credits", "granted")):
            credits = Decimal(data.get(kind) or "0")
            if credits <= 0:
                continue
            settled = kind == "granted_credits"
            cents = int(credits * Decimal(wallet["rate_amount"]) * 100)
            if settled:
                self._wallet_move(wallet, cents)
            now = h._iso(h._now())
            made.append(
                {
                    "lago_id": h._uuid(),
                    "lago_wallet_id": wallet["lago_id"],
                    "lago_invoice_id": None,
                    "lago_credit_note_id": None,
                    "lago_voided_invoice_id": None,
                    "status": "settled" if settled else "pending",
                    "source": "manual",
                    "transaction_status": status,
                    "transaction_type": "inbound",
                    "amount": str(Decimal(cents) / 100),
                    "credit_amount": str(credits),
                    "invoice_requires_successful_payment": False,
                    "metadata": [],
                    "remaining_amount_cents": cents,
                    "remaining_credit_amount": str(credits),
                    "priority": 50,
                    "settled_at": now if settled else None,
                    "failed_at": None,
                    "created_at": now,
                    "name": data.get("name"),
                    "payment_method": {"payment_method_type": "provider"},
                }
            )
        self._wallet_transactions.extend(made)
        return 200, {"wallet_transactions": made}

    def _list_wallet_transactions(self, request, lago_id: str):
        self._find_wallet(lago_id)
        items = [t for t in reversed(self._wallet_transactions) if t["lago_wallet_id"] == lago_id]
        return 200, h._paginate(request, "wallet_transactions", items)

    # -- credit notes ----------------------------------------------------------------------
    def _create_credit_note(self, request):
        data = self._body(request, "credit_note")
        invoice = self._find_invoice(data["invoice_id"])
        if invoice["status"] != "finalized":
            raise h._ApiError(405, h._error(405, "not_allowed", {"invoice": ["not_finalized"]}))
        fees = {fee["lago_id"]: fee for fee in invoice["fees"]}
        items, subtotal, taxes = [], 0, Decimal(0)
        for item in data["items"]:
            fee = fees.get(item["fee_id"])
            if fee is None:
                raise h._not_found("fee")
            left = fee["amount_cents"] - self._credited.get(fee["lago_id"], 0)
            if item["amount_cents"] > left:
                raise h._invalid({"amount_cents": ["higher_than_remaining_fee_amount"]})
            subtotal += item["amount_cents"]
            taxes += Decimal(item["amount_cents"]) * Decimal(str(fee["taxes_rate"])) / 100
            items.append(
                {
                    "lago_id": h._uuid(),
                    "amount_cents": item["amount_cents"],
                    "amount_currency": invoice["currency"],
                    "fee": fee,
                }
            )
        tax_cents = int(taxes.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        total = subtotal + tax_cents
        credit = data.get("credit_amount_cents") or 0
        refund = data.get("refund_amount_cents") or 0
        offset = data.get("offset_amount_cents") or 0
        if credit + refund + offset != total:
            raise h._invalid({"base": ["does_not_match_item_amounts"]})
        if refund and invoice["payment_status"] != "succeeded":
            raise h._invalid({"refund_amount_cents": ["invoice_not_paid"]})
        for item in data["items"]:
            self._credited[item["fee_id"]] = (
                self._credited.get(item["fee_id"], 0) + item["amount_cents"]
            )
        now = h._now()
        sequence = len(self._credit_notes) + 1
        note = {
            "lago_id": h._uuid(),
            "billing_entity_code": "default",
            "sequential_id": sequence,
            "number": f"{invoice['number']}-CN{sequence:03d}",
            "lago_invoice_id": invoice["lago_id"],
            "invoice_number": invoice["number"],
            "issuing_date": now.date().isoformat(),
            "credit_status": "available" if credit else None,
            "refund_status": "pending" if refund else None,
            "reason": data.get("reason") or "other",
            "description": data.get("description"),
            "currency": invoice["currency"],
            "total_amount_cents": total,
            "taxes_amount_cents": tax_cents,
            "taxes_rate": 0,
            "sub_total_excluding_taxes_amount_cents": subtotal,
            "balance_amount_cents": credit,
            "credit_amount_cents": credit,
            "refund_amount_cents": refund,
            "offset_amount_cents": offset,
            "coupons_adjustment_amount_cents": 0,
            "created_at": h._iso(now),
            "updated_at": h._iso(now),
            "file_url": None,
            "items": items,
            "applied_taxes": [],
            "metadata": data.get("metadata"),
            "customer_external_id": invoice["customer"]["external_id"],
        }
        self._credit_notes.append(note)
        return 200, {"credit_note": _public(note)}

    def _list_credit_notes(self, request):
        customer = request.args.get("external_customer_id")
        items = [
            _public(n)
            for n in reversed(self._credit_notes)
            if not customer or n["customer_external_id"] == customer
        ]
        return 200, h._paginate(request, "credit_notes", items)

    def _void_credit_note(self, request, lago_id: str):
        for note in self._credit_notes:
            if note["lago_id"] == lago_id:
                if note["credit_status"] != "available":
                    raise h._ApiError(
                        405, h._error(405, "not_allowed", {"credit_note": ["not_voidable"]})
                    )
                note.update(credit_status="voided", balance_amount_cents=0)
                note["updated_at"] = h._iso(h._now())
                return 200, {"credit_note": _public(note)}
        raise h._not_found("credit_note")

    for function in list(locals().values()):
        if callable(function) and function.__name__.startswith("_") and function is not install:
            setattr(cls, function.__name__, function)
    for function in (
        coupons,
        applied_coupons,
        wallets,
        wallet_transactions,
        credit_notes,
        add_ons,
    ):
        setattr(cls, function.__name__, property(function))


def _public(note: dict) -> dict:
    """A credit note as Lago shows it (without the fake's own bookkeeping)."""
    return {k: v for k, v in note.items() if k != "customer_external_id"}
