"""A stateful, spec-checked fake of the Lago billing API for tests.

    fake = FakeLago(spec_path).start()      # serves http://127.0.0.1:<port>/api/v1/...
    ...exercise the client against fake.url...
    assert fake.violations == []            # nothing the client sent broke the spec
    fake.stop()

Every request is checked against Lago's OpenAPI spec before the fake acts on it, and
every answer the fake builds is checked too, so the fake cannot drift from the real API
silently. Behaviour follows lago-api where the spec is silent (upserts, plan upgrades vs
downgrades, error codes).
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import traceback
import uuid
from calendar import monthrange
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from http import HTTPStatus
from math import ceil
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from . import lago_corrections
from .lago_spec import SpecValidator

API_PREFIX = "/api/v1"
BATCH_MAX_EVENTS = 100
DEFAULT_PER_PAGE = 20
INTERVAL_MONTHS = {"monthly": 1, "quarterly": 3, "semiannual": 6, "yearly": 12}
YEARLY_FACTOR = {"weekly": 52, "monthly": 12, "quarterly": 4, "semiannual": 2, "yearly": 1}

_ROUTES = [
    ("POST", "/customers", "upsert_customer"),
    ("GET", "/customers", "list_customers"),
    ("GET", "/customers/<external_id>", "get_customer"),
    ("DELETE", "/customers/<external_id>", "delete_customer"),
    ("POST", "/billable_metrics", "create_billable_metric"),
    ("GET", "/billable_metrics", "list_billable_metrics"),
    ("GET", "/billable_metrics/<code>", "get_billable_metric"),
    ("PUT", "/billable_metrics/<code>", "update_billable_metric"),
    ("POST", "/plans", "create_plan"),
    ("GET", "/plans", "list_plans"),
    ("GET", "/plans/<code>", "get_plan"),
    ("PUT", "/plans/<code>", "update_plan"),
    ("DELETE", "/plans/<code>", "delete_plan"),
    ("POST", "/subscriptions", "create_subscription"),
    ("GET", "/subscriptions", "list_subscriptions"),
    ("GET", "/subscriptions/<external_id>", "get_subscription"),
    ("PUT", "/subscriptions/<external_id>", "update_subscription"),
    ("DELETE", "/subscriptions/<external_id>", "terminate_subscription"),
    ("POST", "/events", "create_event"),
    ("POST", "/events/batch", "create_events_batch"),
    ("GET", "/webhooks/json_public_key", "json_public_key"),
    ("GET", "/invoices", "list_invoices"),
    ("POST", "/invoices/preview", "preview_invoice"),
    ("GET", "/invoices/<lago_id>", "get_invoice"),
    ("PUT", "/invoices/<lago_id>", "update_invoice"),
    ("PUT", "/invoices/<lago_id>/finalize", "finalize_invoice"),
    ("POST", "/invoices/<lago_id>/void", "void_invoice"),
]


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None, millis: bool = False) -> str | None:
    if moment is None:
        return None
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds" if millis else "seconds")
    return text.replace("+00:00", "Z")


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _uuid() -> str:
    return str(uuid.uuid4())


def _add_months(moment: datetime, months: int) -> datetime:
    year, month = divmod(moment.month - 1 + months, 12)
    year, month = moment.year + year, month + 1
    return moment.replace(year=year, month=month, day=min(moment.day, monthrange(year, month)[1]))


def _billing_period(interval: str, billing_time: str, started: datetime, now: datetime):
    """(start, end) of the period containing `now`, like Lago's dates services."""
    midnight = started.replace(hour=0, minute=0, second=0, microsecond=0)
    months = INTERVAL_MONTHS.get(interval)
    if months is None:  # weekly: calendar weeks start on Monday
        origin = midnight
        if billing_time == "calendar":
            origin -= timedelta(days=midnight.weekday())
        start = origin + timedelta(weeks=(now - origin).days // 7)
        end = start + timedelta(weeks=1)
    else:
        origin = midnight if billing_time == "anniversary" else midnight.replace(month=1, day=1)
        elapsed = (now.year - origin.year) * 12 + now.month - origin.month
        if now.day < origin.day:  # an anniversary month turns over on the anniversary day
            elapsed -= 1
        periods = elapsed // months * months
        # Both ends from the origin, so a 31st anniversary does not drift after February.
        start, end = _add_months(origin, periods), _add_months(origin, periods + months)
    return max(start, started), end - timedelta(seconds=1)


def _error(status: int, code: str | None = None, details: Any = None) -> dict:
    body = {"status": status, "error": HTTPStatus(status).phrase}
    if code is not None:
        body["code"] = code
    if details is not None:
        body["error_details"] = details
    return body


class _ApiError(Exception):
    def __init__(self, status: int, body: dict):
        super().__init__(body)
        self.status, self.body = status, body


def _not_found(resource: str) -> _ApiError:
    return _ApiError(404, _error(404, f"{resource}_not_found"))


def _invalid(details: dict) -> _ApiError:
    return _ApiError(422, _error(422, "validation_errors", details))


@dataclass
class _Fault:
    kind: str  # "fail", "rate_limit" or "delay"
    remaining: int
    path_prefix: str | None
    status: int = 500
    retry_after: int = 1
    seconds: float = 0.0

    def applies_to(self, path: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.path_prefix is None:
            return True
        prefix = self.path_prefix
        if not prefix.startswith(API_PREFIX):
            prefix = API_PREFIX + "/" + prefix.lstrip("/")
        return path.startswith(prefix)


class _QuietHandler(WSGIRequestHandler):
    def log(self, kind: str, message: str, *args: Any) -> None:
        pass  # werkzeug would print every request to stderr


class FakeLago:
    def __init__(self, spec_path: str | Path, api_key: str = "lago-test-key"):
        self.api_key = api_key
        self._spec = SpecValidator(spec_path)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server = None
        self._thread: threading.Thread | None = None
        self._routes = Map(
            [
                Rule(API_PREFIX + path, methods=[method], endpoint=endpoint)
                for method, path, endpoint in _ROUTES
            ]
        )
        # Generated per fake, not per reset(): a client may cache the public key.
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.public_key_pem = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        self.reset()

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> FakeLago:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = make_server(
            "127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="FakeLago", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes requests sleeping in delay_next()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeLago:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeLago is not started")
        return f"http://127.0.0.1:{self._server.server_port}"

    def reset(self) -> None:
        with self._lock:
            self._customers: dict[str, dict] = {}
            self._billable_metrics: dict[str, dict] = {}
            self._plans: dict[str, dict] = {}
            self._subscriptions: list[dict] = []  # history: one external_id, many records
            self._events: dict[str, dict] = {}
            self._requests: list[dict] = []
            self._violations: list[str] = []
            self._faults: list[_Fault] = []
            self._customer_seq = 0
            self._invoices: dict[str, dict] = {}
            self._corrections_reset()

    # -- what tests inspect -----------------------------------------------------

    @property
    def requests(self) -> list[dict]:
        with self._lock:
            return list(self._requests)

    @property
    def violations(self) -> list[str]:
        with self._lock:
            return list(self._violations)

    @property
    def customers(self) -> dict[str, dict]:
        return self._customers

    @property
    def billable_metrics(self) -> dict[str, dict]:
        return self._billable_metrics

    @property
    def plans(self) -> dict[str, dict]:
        return self._plans

    @property
    def events(self) -> dict[str, dict]:
        return self._events

    @property
    def invoices(self) -> dict[str, dict]:
        return self._invoices

    def issue_invoice(
        self,
        *,
        external_subscription_id: str,
        charges_from: datetime,
        charges_to: datetime,
        fees_amount_cents: int | None = None,
        taxes_amount_cents: int = 0,
        status: str = "finalized",
        fees: Sequence[dict] = (),
        true_up_days: tuple[int, int] | None = None,
    ) -> dict:
        """Lago's billing run, as a test drives it: an invoice for one subscription period
        (Lago shows the period's end as end - 1 s). Given no `fees_amount_cents` and no
        `fees`, the fake rates the period itself: the plan's fee and its standard charges on
        the events it received, per charge filter (see _period_fees).

        `fees` itemizes fees ({"type": "subscription" | "charge", "code", "amount_cents"}),
        added to `fees_amount_cents`. With `true_up_days` (days of the period covered, days
        in it), Lago's minimum commitment true-up is added when the itemized fees fall
        short of the commitment the fake holds for the subscription, prorated by those days
        (Commitments::Minimum::CalculateTrueUpFeeService)."""
        with self._lock:
            sub = self.subscriptions[external_subscription_id]
            customer = self._customers[sub["external_customer_id"]]
            items = [self._fee(sub, f["type"], f["code"], f["amount_cents"]) for f in fees]
            if fees_amount_cents is None and not fees:
                items = self._period_fees(sub, charges_from, charges_to)
            rated = sum(item["amount_cents"] for item in items)
            commitment = self.minimum_commitment_of(sub)
            if true_up_days is not None and commitment is not None:
                covered, days = true_up_days
                due = (Decimal(commitment["amount_cents"]) * covered / days).quantize(
                    Decimal(1), rounding=ROUND_HALF_UP
                )
                true_up = int(due) - rated
                if true_up > 0:
                    name = commitment.get("invoice_display_name") or "Minimum commitment"
                    items.append(self._fee(sub, "commitment", sub["plan_code"], true_up, name))
            fees_amount_cents = (fees_amount_cents or 0) + sum(
                item["amount_cents"] for item in items
            )
            sequence = len(self._invoices) + 1
            now = _iso(_now())
            total = fees_amount_cents + taxes_amount_cents
            invoice = {
                "lago_id": _uuid(),
                "billing_entity_code": None,
                "sequential_id": sequence,
                "number": f"LAG-FAKE-{sequence:03d}",
                "issuing_date": _now().date().isoformat(),
                "payment_due_date": _now().date().isoformat(),
                "payment_overdue": False,
                "net_payment_term": 0,
                "invoice_type": "subscription",
                "status": status,
                "payment_status": "pending",
                "currency": sub["plan_amount_currency"],
                "fees_amount_cents": fees_amount_cents,
                "coupons_amount_cents": 0,
                "credit_notes_amount_cents": 0,
                "sub_total_excluding_taxes_amount_cents": fees_amount_cents,
                "taxes_amount_cents": taxes_amount_cents,
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
                "billing_periods": [
                    {
                        "lago_subscription_id": sub["lago_id"],
                        "external_subscription_id": external_subscription_id,
                        "lago_plan_id": self._plans[sub["plan_code"]]["lago_id"],
                        "subscription_from_datetime": _iso(charges_from),
                        "subscription_to_datetime": _iso(charges_to - timedelta(seconds=1)),
                        "charges_from_datetime": _iso(charges_from),
                        "charges_to_datetime": _iso(charges_to - timedelta(seconds=1)),
                        "invoicing_reason": "subscription_periodic",
                    }
                ],
                "fees": items,
            }
            self._apply_credits(invoice)  # coupons, credit notes, prepaid credits
            self._invoices[invoice["lago_id"]] = invoice
            return invoice

    def minimum_commitment_of(self, sub: dict) -> dict | None:
        """The commitment Lago bills a subscription: its plan's, unless the subscription
        has plan_overrides. Lago's overridden plan is a copy that keeps no commitment but
        the one the overrides carry (Plans::OverrideService)."""
        overrides = sub.get("plan_overrides")
        if overrides:
            return overrides.get("minimum_commitment")
        return self._plans[sub["plan_code"]].get("minimum_commitment")

    def _fee(
        self, sub: dict, fee_type: str, code: str, amount_cents: int, display_name: str = ""
    ) -> dict:
        """A FeeObject as Lago's V1::FeeSerializer writes one (a commitment's item is the
        subscription's plan; its invoice_display_name the commitment's)."""
        plan = self._plans[sub["plan_code"]]
        currency = sub["plan_amount_currency"]
        charge = fee_type == "charge"
        return {
            "lago_id": _uuid(),
            "lago_subscription_id": sub["lago_id"],
            "external_subscription_id": sub["external_id"],
            "item": {
                "type": fee_type,
                "code": code,
                "name": code if charge else plan["name"],
                "invoice_display_name": display_name or (code if charge else plan["name"]),
                "lago_item_id": _uuid() if charge else sub["lago_id"],
                "item_type": "BillableMetric" if charge else "Subscription",
            },
            "pay_in_advance": False,
            "invoiceable": True,
            "amount_cents": amount_cents,
            "amount_currency": currency,
            "taxes_amount_cents": 0,
            "taxes_rate": 0,
            "total_amount_cents": amount_cents,
            "total_amount_currency": currency,
            "units": "1.0",
            "total_aggregated_units": "1.0",
            "precise_unit_amount": str(Decimal(amount_cents) / 100),
            "sub_total_excluding_taxes_amount_cents": amount_cents,
            "sub_total_excluding_taxes_precise_amount_cents": str(amount_cents),
            "payment_status": "pending",
        }

    def _period_fees(self, sub: dict, start: datetime, end: datetime) -> list[dict]:
        """Lago's fees for one period, computed independently of the service's engine:
        the plan's fee, then each standard charge (count_agg or sum_agg) per charge
        filter, an event counting for the filter matching the most of its properties
        (lago-api ChargeFilters::EventMatchingService; the first one on a tie), the rest
        for the charge's own properties. Fees of no event and no amount are left out, as
        Lago leaves them off an invoice."""
        plan = self._plans[sub["plan_code"]]
        currency = sub["plan_amount_currency"]
        fees = [
            self._rated_fee(
                currency, "subscription", plan["code"], plan["name"], 1, plan["amount_cents"]
            )
        ]
        metrics = {m["code"]: m for m in self._billable_metrics.values()}
        events = [
            e
            for e in self._events.values()
            if e["external_subscription_id"] == sub["external_id"]
            and start <= _parse_iso(e["timestamp"]) < end
        ]
        for charge in plan["charges"]:
            metric = metrics[charge["billable_metric_code"]]
            if charge["charge_model"] != "standard":
                raise NotImplementedError("the fake rates standard charges only")
            keys = [f["key"] for f in metric.get("filters") or []]
            buckets: dict[int, list[dict]] = {}
            for event in (e for e in events if e["code"] == metric["code"]):
                props = {k: str(v) for k, v in event["properties"].items() if k in keys}
                matching = [
                    (len(f["values"]), -i)
                    for i, f in enumerate(charge["filters"])
                    if all(props.get(k) in values for k, values in f["values"].items())
                ]
                buckets.setdefault(-max(matching)[1] if matching else -1, []).append(event)
            for index in [*range(len(charge["filters"])), -1]:
                chosen = buckets.get(index, [])
                item = charge["filters"][index] if index >= 0 else None
                properties = item["properties"] if item else charge["properties"]
                if metric["aggregation_type"] == "count_agg":
                    units = Decimal(len(chosen))
                else:
                    units = sum(
                        (
                            Decimal(str(e["properties"].get(metric["field_name"], 0)))
                            for e in chosen
                        ),
                        Decimal(0),
                    )
                cents = int(
                    (units * Decimal(properties["amount"]) * 100).quantize(
                        Decimal(1), rounding=ROUND_HALF_UP
                    )
                )
                if not chosen and cents == 0:
                    continue
                name = None
                if item:
                    name = item.get("invoice_display_name") or ", ".join(
                        v for values in item["values"].values() for v in values
                    )
                fees.append(
                    self._rated_fee(
                        currency, "charge", metric["code"], metric["name"], units, cents, name
                    )
                )
        return fees

    @staticmethod
    def _rated_fee(currency, kind, code, name, units, cents, filter_name=None) -> dict:
        units = Decimal(units)
        unit = (Decimal(cents) / 100 / units) if units else Decimal(0)
        return {
            "lago_id": _uuid(),
            "item": {
                "type": kind,
                "code": code,
                "name": name,
                "description": None,
                "invoice_display_name": name,
                "filter_invoice_display_name": filter_name,
                "filters": None,
                "lago_item_id": _uuid(),
                "item_type": "BillableMetric" if kind == "charge" else "Subscription",
                "grouped_by": {},
            },
            "amount_cents": cents,
            "amount_currency": currency,
            "taxes_amount_cents": 0,
            "taxes_rate": 0,
            "total_amount_cents": cents,
            "total_amount_currency": currency,
            "pay_in_advance": False,
            "invoiceable": True,
            "units": str(units),
            "total_aggregated_units": str(units),
            "precise_unit_amount": str(unit),
            "sub_total_excluding_taxes_amount_cents": cents,
            "sub_total_excluding_taxes_precise_amount_cents": str(cents),
            "payment_status": "pending",
        }

    @property
    def subscriptions(self) -> dict[str, dict]:
        """The current record per external_id: active, else pending, else the latest
        terminated, else the latest canceled (one external_id can have many records)."""
        rank = {"active": 3, "pending": 2, "terminated": 1}
        current: dict[str, dict] = {}
        with self._lock:
            for sub in self._subscriptions:
                best = current.get(sub["external_id"])
                if best is None or rank.get(sub["status"], 0) >= rank.get(best["status"], 0):
                    current[sub["external_id"]] = sub
        return current

    # -- fault injection --------------------------------------------------------

    # A path_prefix is matched against the request path; "/events" means "/api/v1/events".

    def fail_next(self, n: int = 1, status: int = 500, path_prefix: str | None = None) -> None:
        """Answer the next n matching requests with `status` without applying them."""
        self._add_fault(_Fault("fail", n, path_prefix, status=status))

    def rate_limit_next(
        self, n: int = 1, retry_after: int = 1, path_prefix: str | None = None
    ) -> None:
        """Answer the next n matching requests with 429 and a Retry-After header."""
        self._add_fault(_Fault("rate_limit", n, path_prefix, status=429, retry_after=retry_after))

    def delay_next(self, n: int = 1, seconds: float = 2.0, path_prefix: str | None = None) -> None:
        """Hold the next n matching requests for `seconds`, then serve them normally."""
        self._add_fault(_Fault("delay", n, path_prefix, seconds=seconds))

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, kinds: set[str], path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.applies_to(path):
                    fault.remaining -= 1
                    return fault
        return None

    # -- HTTP plumbing ----------------------------------------------------------

    def _wsgi(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        try:
            response = self._handle(request)
        except Exception:  # a bug in the fake must fail the test, not hide in a 500
            self._violate(
                f"FakeLago crashed on {request.method} {request.path}:\n" + traceback.format_exc()
            )
            response = _json_response(500, _error(500, "internal_error"))
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        with self._lock:
            self._requests.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "query": request.args.to_dict(flat=False),
                    "json": request.get_json(force=True, silent=True),
                    "headers": dict(request.headers.items()),
                }
            )
        delay = self._take_fault({"delay"}, request.path)
        if delay is not None:
            self._stopping.wait(delay.seconds)
        # Injected faults answer the way a proxy in front of Lago would: before auth
        # and validation, and outside the spec (which has no 429 or 5xx).
        fault = self._take_fault({"fail", "rate_limit"}, request.path)
        if fault is not None:
            response = _json_response(
                fault.status,
                _error(fault.status, HTTPStatus(fault.status).phrase.lower().replace(" ", "_")),
            )
            if fault.kind == "rate_limit":
                response.headers["Retry-After"] = str(fault.retry_after)
            return response
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._checked(request, _json_response(401, _error(401)))
        problem, known_operation = self._spec.check_request(request)
        if problem is not None:
            query = unquote(request.query_string.decode())
            target = request.path + (f"?{query}" if query else "")
            self._violate(f"request {request.method} {target}: {problem}")
            if not known_operation:
                return _json_response(404, _error(404, "not_found"))
            return _json_response(
                400,
                {
                    "status": 400,
                    "error": "spec_violation",
                    "code": "spec_violation",
                    "error_details": {"message": problem},
                },
            )
        try:
            endpoint, args = self._routes.bind("127.0.0.1").match(request.path, request.method)
        except HTTPException:
            return _json_response(
                404,
                _error(
                    404,
                    "not_found",
                    {"message": f"{request.method} {request.path} is not implemented by FakeLago"},
                ),
            )
        with self._lock:  # encode under the lock too: bodies are live state
            try:
                status, body = getattr(self, "_" + endpoint)(request, **args)
            except _ApiError as exc:
                status, body = exc.status, exc.body
            response = _json_response(status, body)
        return self._checked(request, response)

    def _checked(self, request: Request, response: Response) -> Response:
        problem = self._spec.check_response(request, response)
        if problem is not None:
            self._violate(
                f"response {response.status_code} to {request.method} {request.path}: {problem}"
            )
        return response

    def _violate(self, message: str) -> None:
        with self._lock:
            self._violations.append(message)

    @staticmethod
    def _body(request: Request, key: str) -> dict:
        return request.get_json(force=True)[key]

    # -- customers --------------------------------------------------------------

    def _new_customer(self, external_id: str) -> dict:
        self._customer_seq += 1
        now = _iso(_now())
        customer = {
            "lago_id": _uuid(),
            "sequential_id": self._customer_seq,
            "slug": f"LAG-FAKE-{self._customer_seq:03d}",
            "external_id": external_id,
            "account_type": "customer",
            "customer_type": None,
            "name": None,
            "firstname": None,
            "lastname": None,
            "legal_name": None,
            "legal_number": None,
            "email": None,
            "phone": None,
            "url": None,
            "logo_url": None,
            "address_line1": None,
            "address_line2": None,
            "city": None,
            "state": None,
            "zipcode": None,
            "country": None,
            "currency": None,
            "timezone": None,
            "applicable_timezone": "UTC",
            "tax_identification_number": None,
            "net_payment_term": None,
            "finalize_zero_amount_invoice": "inherit",
            "skip_invoice_custom_sections": False,
            "created_at": now,
            "updated_at": now,
            "billing_configuration": {"invoice_grace_period": 0, "document_locale": "en"},
            "shipping_address": {
                key: None
                for key in ("address_line1", "address_line2", "city", "state", "zipcode", "country")
            },
            "metadata": [],
            "integration_customers": [],
            "taxes": [],
            "applicable_invoice_custom_sections": [],
        }
        self._customers[external_id] = customer
        return customer

    def _upsert_customer(self, request: Request):
        data = self._body(request, "customer")
        customer = self._customers.get(data["external_id"]) or self._new_customer(
            data["external_id"]
        )
        for key, value in data.items():
            if key in ("billing_configuration", "shipping_address"):
                customer[key].update(value or {})
            elif key == "metadata":
                customer["metadata"] = self._customer_metadata(customer, value)
            elif key in ("integration_customers", "tax_codes", "invoice_custom_section_codes"):
                continue  # integrations, taxes and custom sections are not faked
            elif key in ("account_type", "billing_entity_code") and value is None:
                continue  # nullable on input, never null in Lago's answer
            elif key not in ("lago_id", "sequential_id", "slug", "created_at"):
                customer[key] = value
        customer["applicable_timezone"] = customer["timezone"] or "UTC"
        customer["updated_at"] = _iso(_now())
        return 200, {"customer": customer}

    @staticmethod
    def _customer_metadata(customer: dict, items: list[dict]) -> list[dict]:
        known = {item["key"]: item for item in customer["metadata"]}
        return [
            {
                "lago_id": known.get(item["key"], {}).get("lago_id", _uuid()),
                "key": item["key"],
                "value": item["value"],
                "display_in_invoice": item["display_in_invoice"],
                "created_at": known.get(item["key"], {}).get("created_at", _iso(_now())),
            }
            for item in items
        ]

    def _find_customer(self, external_id: str) -> dict:
        if external_id not in self._customers:
            raise _not_found("customer")
        return self._customers[external_id]

    def _get_customer(self, request: Request, external_id: str):
        return 200, {"customer": self._find_customer(external_id)}

    def _list_customers(self, request: Request):
        customers = list(reversed(self._customers.values()))  # newest first, as Lago
        return 200, _paginate(request, "customers", customers)

    def _delete_customer(self, request: Request, external_id: str):
        customer = self._find_customer(external_id)
        for sub in self._subscriptions:
            if sub["external_customer_id"] == external_id:
                self._end_subscription(sub)
        del self._customers[external_id]
        return 200, {"customer": customer}

    # -- billable metrics -------------------------------------------------------

    def _create_billable_metric(self, request: Request):
        data = self._body(request, "billable_metric")
        if data["code"] in self._billable_metrics:
            raise _invalid({"code": ["value_already_exist"]})
        metric = {
            "lago_id": _uuid(),
            "description": None,
            "recurring": False,
            "rounding_function": None,
            "rounding_precision": None,
            "field_name": None,
            "weighted_interval": None,
            "filters": [],
            "created_at": _iso(_now()),
        }
        self._apply_metric(metric, data)
        self._billable_metrics[metric["code"]] = metric
        return 200, {"billable_metric": metric}

    def _apply_metric(self, metric: dict, data: dict) -> None:
        candidate = {**metric, **data}
        if candidate["aggregation_type"] != "count_agg" and not candidate["field_name"]:
            raise _invalid({"field_name": ["value_is_mandatory"]})
        metric.update(candidate)
        if metric.get("expression") is None:
            metric.pop("expression", None)  # a string when present, never null

    def _find_metric(self, code: str) -> dict:
        if code not in self._billable_metrics:
            raise _not_found("billable_metric")
        return self._billable_metrics[code]

    def _get_billable_metric(self, request: Request, code: str):
        return 200, {"billable_metric": self._find_metric(code)}

    def _list_billable_metrics(self, request: Request):
        metrics = list(reversed(self._billable_metrics.values()))
        return 200, _paginate(request, "billable_metrics", metrics)

    def _update_billable_metric(self, request: Request, code: str):
        metric = self._find_metric(code)
        data = self._body(request, "billable_metric")
        _check_code_free(self._billable_metrics, code, data)
        self._apply_metric(metric, data)
        _rekey(self._billable_metrics, code, metric["code"])
        return 200, {"billable_metric": metric}

    # -- plans ------------------------------------------------------------------

    def _create_plan(self, request: Request):
        data = self._body(request, "plan")
        if data["code"] in self._plans:
            raise _invalid({"code": ["value_already_exist"]})
        plan = {
            "lago_id": _uuid(),
            "created_at": _iso(_now()),
            "trial_period": 0.0,
            "bill_charges_monthly": None,
            "bill_fixed_charges_monthly": None,
            "minimum_commitment": None,
            "charges": [],
            "fixed_charges": [],
            "taxes": [],
            "usage_thresholds": [],
            "metadata": None,
        }
        self._apply_plan(plan, data)
        self._plans[plan["code"]] = plan
        return 200, {"plan": plan}

    def _apply_plan(self, plan: dict, data: dict) -> None:
        charges = self._charges(plan["charges"], data["charges"]) if "charges" in data else None
        for key, value in data.items():
            if key in ("charges", "fixed_charges", "tax_codes", "cascade_updates"):
                continue  # add-ons (fixed charges) and taxes are not faked
            if key == "minimum_commitment":
                value = value and {
                    "lago_id": _uuid(),
                    "plan_code": data.get("code", plan.get("code")),
                    "interval": data.get("interval", plan.get("interval")),
                    "created_at": _iso(_now()),
                    "updated_at": _iso(_now()),
                    "taxes": [],
                    **{k: v for k, v in value.items() if k != "tax_codes"},
                }
            elif key == "usage_thresholds":
                value = [
                    {
                        "lago_id": _uuid(),
                        "threshold_display_name": None,
                        "recurring": False,
                        "created_at": _iso(_now()),
                        "updated_at": _iso(_now()),
                        **item,
                    }
                    for item in value
                ]
            if value is None and key in ("description", "invoice_display_name", "trial_period"):
                plan.pop(key, None)  # non-null in Lago's answer
            else:
                plan[key] = value
        if charges is not None:
            plan["charges"] = charges

    def _charges(self, current: list[dict], items: list[dict]) -> list[dict]:
        """Lago semantics: items with a known `id` update, others are added, the rest go."""
        by_id = {charge["lago_id"]: charge for charge in current}
        metrics = {metric["lago_id"]: metric for metric in self._billable_metrics.values()}
        charges = []
        for item in items:
            charge = dict(
                by_id.get(item.get("id"))
                or {
                    "lago_id": _uuid(),
                    "created_at": _iso(_now()),
                    "code": None,
                    "invoice_display_name": None,
                    "pay_in_advance": False,
                    "invoiceable": True,
                    "regroup_paid_fees": None,
                    "prorated": False,
                    "min_amount_cents": 0,
                    "properties": {},
                    "filters": [],
                    "taxes": [],
                    "lago_parent_id": None,
                }
            )
            metric = metrics.get(
                item.get("billable_metric_id", charge.get("lago_billable_metric_id"))
            )
            if metric is None:
                raise _not_found("billable_metric")
            charge["lago_billable_metric_id"] = metric["lago_id"]
            charge["billable_metric_code"] = metric["code"]
            for key, value in item.items():
                if key == "filters":
                    value = [{"invoice_display_name": None, **f} for f in value]
                if key not in ("id", "billable_metric_id", "tax_codes"):
                    charge[key] = value
            if "charge_model" not in charge:
                raise _invalid({"charge_model": ["value_is_mandatory"]})
            charges.append(charge)
        return charges

    def _find_plan(self, code: str) -> dict:
        if code not in self._plans:
            raise _not_found("plan")
        return self._plans[code]

    def _get_plan(self, request: Request, code: str):
        return 200, {"plan": self._find_plan(code)}

    def _list_plans(self, request: Request):
        return 200, _paginate(request, "plans", list(reversed(self._plans.values())))

    def _update_plan(self, request: Request, code: str):
        plan = self._find_plan(code)
        data = self._body(request, "plan")
        _check_code_free(self._plans, code, data)
        self._apply_plan(plan, data)
        _rekey(self._plans, code, plan["code"])
        return 200, {"plan": plan}

    def _delete_plan(self, request: Request, code: str):
        plan = self._find_plan(code)
        for sub in self._subscriptions:
            if sub["plan_code"] == code:
                self._end_subscription(sub)
        del self._plans[code]
        return 200, {"plan": plan}

    # -- subscriptions ----------------------------------------------------------

    def _create_subscription(self, request: Request):
        data = self._body(request, "subscription")
        plan = self._find_plan(data["plan_code"])
        # Like the real API, assigning a plan creates an unknown customer on the fly.
        customer = self._customers.get(data["external_customer_id"]) or self._new_customer(
            data["external_customer_id"]
        )
        mine = [
            s
            for s in self._subscriptions
            if s["external_id"] == data["external_id"] and s["status"] in ("active", "pending")
        ]
        if any(s["external_customer_id"] != customer["external_id"] for s in mine):
            raise _invalid({"external_id": ["value_already_exist"]})
        current = next((s for s in mine if s["status"] == "active"), None) or next(iter(mine), None)
        self._set_currency(customer, plan)
        if current is None:
            sub = self._new_subscription(customer, plan, data)
        elif current["plan_code"] == plan["code"]:
            sub = current
        elif current["status"] == "pending":  # not started yet: swap the plan in place
            sub = current
            sub.update(
                plan_code=plan["code"],
                plan_amount_cents=plan["amount_cents"],
                plan_amount_currency=plan["amount_currency"],
            )
        elif _yearly_cents(plan) >= _yearly_cents(self._plans.get(current["plan_code"])):
            self._cancel_pending_change(current)
            self._end_subscription(current)
            current["next_plan_code"] = plan["code"]
            sub = self._new_subscription(customer, plan, data, previous=current)
        else:
            # A downgrade waits for the end of the current billing period.
            self._cancel_pending_change(current)
            self._new_subscription(customer, plan, data, previous=current, pending=True)
            period_end = _parse_iso(current["current_billing_period_ending_at"])
            current["next_plan_code"] = plan["code"]
            current["downgrade_plan_date"] = (period_end + timedelta(seconds=1)).date().isoformat()
            sub = current
        if data.get("name"):
            sub["name"] = data["name"]
        return 200, {"subscription": self._extended(sub)}

    def _set_currency(self, customer: dict, plan: dict) -> None:
        """A customer takes its first plan's currency, and keeps it while subscribed."""
        if customer["currency"] not in (None, plan["amount_currency"]) and any(
            s["external_customer_id"] == customer["external_id"]
            and s["status"] in ("active", "pending")
            for s in self._subscriptions
        ):
            raise _invalid({"currency": ["currencies_does_not_match"]})
        customer["currency"] = plan["amount_currency"]

    def _new_subscription(
        self,
        customer: dict,
        plan: dict,
        data: dict,
        previous: dict | None = None,
        pending: bool = False,
    ) -> dict:
        now = _now()
        subscription_at = _parse_iso(data.get("subscription_at")) or now
        if previous is not None:
            subscription_at = _parse_iso(previous["subscription_at"])
        pending = pending or subscription_at.date() > now.date()
        billing_time = (previous or data).get("billing_time") or "calendar"
        started_at = None if pending else (now if previous else subscription_at)
        period = (
            (None, None)
            if pending
            else _billing_period(plan["interval"], billing_time, started_at, now)
        )
        sub = {
            "lago_id": _uuid(),
            "external_id": data["external_id"],
            "lago_customer_id": customer["lago_id"],
            "external_customer_id": customer["external_id"],
            "name": data.get("name"),
            "plan_code": plan["code"],
            "plan_amount_cents": plan["amount_cents"],
            "plan_amount_currency": plan["amount_currency"],
            "status": "pending" if pending else "active",
            "billing_time": billing_time,
            "subscription_at": _iso(subscription_at),
            "started_at": _iso(started_at),
            "trial_ended_at": None,
            "ending_at": data.get("ending_at"),
            "terminated_at": None,
            "canceled_at": None,
            "created_at": _iso(now),
            "previous_plan_code": previous and previous["plan_code"],
            "next_plan_code": None,
            "downgrade_plan_date": None,
            "current_billing_period_started_at": _iso(period[0]),
            "current_billing_period_ending_at": _iso(period[1]),
            # Lago only sets this for pay-in-advance plans; null otherwise.
            "on_termination_credit_note": "credit" if plan.get("pay_in_advance") else None,
            "on_termination_invoice": "generate",
            "consolidate_invoice": data.get("consolidate_invoice", True),
        }
        if data.get("plan_overrides"):
            sub["plan_overrides"] = data["plan_overrides"]
        self._subscriptions.append(sub)
        return sub

    def _cancel_pending_change(self, current: dict) -> None:
        for sub in self._subscriptions:
            if (
                sub["external_id"] == current["external_id"]
                and sub["status"] == "pending"
                and sub["previous_plan_code"] == current["plan_code"]
            ):
                sub.update(status="canceled", canceled_at=_iso(_now()))
        current.update(next_plan_code=None, downgrade_plan_date=None)

    def _end_subscription(self, sub: dict) -> None:
        if sub["status"] == "active":
            self._cancel_pending_change(sub)
            sub.update(status="terminated", terminated_at=_iso(_now()))
        elif sub["status"] == "pending":
            sub.update(status="canceled", canceled_at=_iso(_now()))
            for other in self._subscriptions:  # a canceled downgrade is no longer scheduled
                if other["external_id"] == sub["external_id"] and other["status"] == "active":
                    other.update(next_plan_code=None, downgrade_plan_date=None)

    def _extended(self, sub: dict) -> dict:
        plan = self._plans.get(sub["plan_code"])
        return {**sub, "plan": plan} if plan else sub

    def _find_subscription(self, external_id: str, status: str) -> dict:
        for sub in reversed(self._subscriptions):
            if sub["external_id"] == external_id and sub["status"] == status:
                return sub
        raise _not_found("subscription")

    def _get_subscription(self, request: Request, external_id: str):
        sub = self._find_subscription(external_id, request.args.get("status", "active"))
        return 200, {"subscription": self._extended(sub)}

    def _list_subscriptions(self, request: Request):
        statuses = request.args.getlist("status[]") or ["active"]
        customer_id = request.args.get("external_customer_id")
        plan_code = request.args.get("plan_code")
        subs = [
            s
            for s in reversed(self._subscriptions)
            if s["status"] in statuses
            and customer_id in (None, s["external_customer_id"])
            and plan_code in (None, s["plan_code"])
        ]
        return 200, _paginate(request, "subscriptions", subs)

    def _update_subscription(self, request: Request, external_id: str):
        payload = request.get_json(silent=True) or {}
        data = payload.get("subscription") or {}
        sub = self._find_subscription(external_id, payload.get("status") or "active")
        for key in ("ending_at", "name", "subscription_at", "plan_overrides"):
            if key in data:
                sub[key] = data[key]
        return 200, {"subscription": self._extended(sub)}

    def _terminate_subscription(self, request: Request, external_id: str):
        status = "pending" if request.args.get("status") == "pending" else "active"
        sub = self._find_subscription(external_id, status)
        for option in ("on_termination_credit_note", "on_termination_invoice"):
            if option in request.args:
                sub[option] = request.args[option]
        self._end_subscription(sub)
        return 200, {"subscription": sub}

    # -- events -----------------------------------------------------------------

    @staticmethod
    def _event(data: dict) -> dict:
        now = _now()
        # Lago reads timestamps with Float(): unix seconds, as a number or a string.
        raw = data.get("timestamp")
        moment = now if raw is None else datetime.fromtimestamp(float(raw), UTC)
        return {
            "lago_id": _uuid(),
            "transaction_id": data["transaction_id"],
            "lago_customer_id": None,
            "lago_subscription_id": None,
            "external_subscription_id": data["external_subscription_id"],
            "code": data["code"],
            "timestamp": _iso(moment, millis=True),
            "properties": data.get("properties") or {},
            "precise_total_amount_cents": data.get("precise_total_amount_cents"),
            "created_at": _iso(now),
        }

    def _create_event(self, request: Request):
        data = self._body(request, "event")
        try:
            event = self._event(data)
        except (ValueError, OverflowError):
            raise _invalid({"timestamp": ["invalid_format"]}) from None
        if event["transaction_id"] in self._events:
            raise _invalid({"transaction_id": ["value_already_exist"]})
        self._events[event["transaction_id"]] = event
        return 200, {"event": event}

    def _create_events_batch(self, request: Request):
        items = self._body(request, "events")
        if not items:
            raise _invalid({"events": ["no_events"]})
        if len(items) > BATCH_MAX_EVENTS:
            raise _invalid({"events": ["too_many_events"]})
        # All or nothing, errors keyed by the event's index (lago-api CreateBatchService).
        events, errors, seen = [], {}, set()
        for index, data in enumerate(items):
            try:
                event = self._event(data)
            except (ValueError, OverflowError):
                errors[str(index)] = {"timestamp": ["invalid_format"]}
                continue
            if event["transaction_id"] in self._events or event["transaction_id"] in seen:
                errors[str(index)] = {"transaction_id": ["value_already_exist"]}
            seen.add(event["transaction_id"])
            events.append(event)
        if errors:
            raise _invalid(errors)
        self._events.update((event["transaction_id"], event) for event in events)
        return 200, {"events": events}

    # -- webhooks ---------------------------------------------------------------

    def _json_public_key(self, request: Request):
        encoded = base64.b64encode(self.public_key_pem.encode()).decode()
        return 200, {"webhook": {"public_key": encoded}}


def _check_code_free(store: dict[str, dict], code: str, data: dict) -> None:
    if data.get("code", code) != code and data["code"] in store:
        raise _invalid({"code": ["value_already_exist"]})


def _rekey(store: dict[str, dict], old: str, new: str) -> None:
    """Rename a key in place, keeping creation order (lists are ordered by it)."""
    if new != old:
        items = [(new if key == old else key, value) for key, value in store.items()]
        store.clear()
        store.update(items)


def _invoice_routes():
    """Kept apart from the class body for size; bound onto FakeLago below."""

    def _find_invoice(self, lago_id: str) -> dict:
        invoice = self._invoices.get(lago_id)
        if invoice is None:
            raise _not_found("invoice")
        return invoice

    def _list_invoices(self, request: Request):
        statuses = request.args.getlist("statuses[]")
        payment_statuses = request.args.getlist("payment_statuses[]")
        # Lists carry the plain invoice object, as Lago's do: no billing periods, no fees.
        extended = {"billing_periods", "credits", "fees", "subscriptions", "error_details"}
        items = [
            {k: v for k, v in i.items() if k not in extended}
            for i in reversed(self._invoices.values())
            if (not statuses or i["status"] in statuses)
            and (not payment_statuses or i["payment_status"] in payment_statuses)
        ]
        return 200, _paginate(request, "invoices", items)

    def _get_invoice(self, request: Request, lago_id: str):
        return 200, {"invoice": self._find_invoice(lago_id)}

    def _update_invoice(self, request: Request, lago_id: str):
        invoice = self._find_invoice(lago_id)
        data = self._body(request, "invoice")
        if "payment_status" in data:
            invoice["payment_status"] = data["payment_status"]
            invoice["updated_at"] = _iso(_now())
        return 200, {"invoice": invoice}

    def _finalize_invoice(self, request: Request, lago_id: str):
        invoice = self._find_invoice(lago_id)
        if invoice["status"] == "draft":
            invoice["status"] = "finalized"
            self._apply_credits(invoice)
        return 200, {"invoice": invoice}

    def _void_invoice(self, request: Request, lago_id: str):
        invoice = self._find_invoice(lago_id)
        if invoice["status"] != "finalized" or invoice["payment_status"] == "succeeded":
            raise _ApiError(405, _error(405, "not_allowed", {"invoice": ["not_voidable"]}))
        invoice["status"] = "voided"
        return 200, {"invoice": invoice}

    def _preview_invoice(self, request: Request):
        data = request.get_json(force=True)
        customer = self._find_customer(data["customer"]["external_id"])
        external_ids = (data.get("subscriptions") or {}).get("external_ids") or []
        fees = 0
        periods = []
        for external_id in external_ids:
            sub = self.subscriptions.get(external_id)
            if sub is None:
                raise _not_found("subscription")
            fees += sub["plan_amount_cents"]
            periods.append(
                {
                    "lago_subscription_id": sub["lago_id"],
                    "external_subscription_id": external_id,
                    "lago_plan_id": self._plans[sub["plan_code"]]["lago_id"],
                    "subscription_from_datetime": sub["current_billing_period_started_at"],
                    "subscription_to_datetime": sub["current_billing_period_ending_at"],
                    "charges_from_datetime": sub["current_billing_period_started_at"],
                    "charges_to_datetime": sub["current_billing_period_ending_at"],
                    "invoicing_reason": "subscription_periodic",
                }
            )
        now = _iso(_now())
        invoice = {
            "lago_id": _uuid(),  # a preview is not stored: its id is throwaway
            "billing_entity_code": None,
            "number": "",
            "issuing_date": _now().date().isoformat(),
            "invoice_type": "subscription",
            "status": "draft",
            "payment_status": "pending",
            "currency": customer["currency"] or "USD",
            "fees_amount_cents": fees,
            "coupons_amount_cents": 0,
            "credit_notes_amount_cents": 0,
            "sub_total_excluding_taxes_amount_cents": fees,
            "taxes_amount_cents": 0,
            "sub_total_including_taxes_amount_cents": fees,
            "prepaid_credit_amount_cents": 0,
            "progressive_billing_credit_amount_cents": 0,
            "total_amount_cents": fees,
            "version_number": 4,
            "created_at": now,
            "updated_at": now,
            "customer": customer,
            "billing_periods": periods,
            "fees": [],
        }
        return 200, {"invoice": invoice}

    for function in (
        _find_invoice,
        _list_invoices,
        _get_invoice,
        _update_invoice,
        _finalize_invoice,
        _void_invoice,
        _preview_invoice,
    ):
        setattr(FakeLago, function.__name__, function)


_invoice_routes()
_ROUTES.extend(lago_corrections.ROUTES)
lago_corrections.install(FakeLago, sys.modules[__name__])


def _yearly_cents(plan: dict | None) -> int:
    return plan["amount_cents"] * YEARLY_FACTOR[plan["interval"]] if plan else 0


def _paginate(request: Request, key: str, items: list[dict]) -> dict:
    """Kaminari-style pages, as Lago serialises them in `meta`."""
    page = max(request.args.get("page", 1, type=int), 1)
    per_page = request.args.get("per_page", DEFAULT_PER_PAGE, type=int)
    per_page = per_page if per_page > 0 else DEFAULT_PER_PAGE
    total_pages = ceil(len(items) / per_page)
    in_range = page <= total_pages
    return {
        key: items[(page - 1) * per_page : page * per_page],
        "meta": {
            "current_page": page,
            "next_page": page + 1 if page < total_pages else None,
            "prev_page": page - 1 if page > 1 and in_range else None,
            "total_pages": total_pages,
            "total_count": len(items),
        },
    }


def _json_response(status: int, body: dict) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
