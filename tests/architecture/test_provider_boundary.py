"""Lago's and Stripe's payload shapes live in billing/providers and nowhere else.

A payload can leak out in two ways, so there are two checks:
- through a provider function. Every public function of `billing.providers.lago` and
  `billing.providers.stripe` is annotated to return our types (the dataclasses of
  `billing.providers.base`, scalars, and containers of them), never a dict or `Any`, and
  no dataclass there holds `Any` except the fields listed below, each a whole object kept
  for a stated reason. This is the contract: it holds for functions added later, whatever
  keys they would read. The hints are resolved with `typing.get_type_hints`, so a missing
  or unresolvable annotation fails too; that a body returns what it declares is left to
  the callers' tests (they read attributes) and to mypy.
- around them. A stored webhook body (`WebhookEvent.body`) is JSON any module can load, and
  a module can import the Lago client's own modules; so the source outside
  billing/providers is scanned for the keys only Lago's and Stripe's payloads use, read by
  subscript or `.get()`, and for imports below `billing.providers.lago`. Keys our own models
  and API share with a provider (`status`, `payment_status`, `object_type`, ...) are left
  out: the scan would flag our own rows. It is a tripwire for the shapes that used to leak;
  the typed signatures are the guarantee.
"""

import ast
import dataclasses
import inspect
import typing
from pathlib import Path

import pytest

from billing.providers import base, lago, stripe

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("core", "billing", "customers", "subscriptions", "webhooks", "backoffice", "config")
PROVIDERS = ROOT / "billing" / "providers"

# Dataclass fields that may hold untyped data, and why.
WHOLE_OBJECTS = {
    ("RemoteObject", "raw"): "dj-stripe mirrors the whole Stripe object",
    ("StripeEvent", "data"): "dj-stripe mirrors the whole Stripe object",
    ("SignedWebhook", "payload"): "stored as received; handlers read it through the parsers",
    ("PaymentResult", "metadata"): "our own metadata, set on the PaymentIntent by collection",
    ("CustomerData", "metadata"): "our own customer metadata",
    ("ChargeData", "properties"): "our charge properties, which Lago takes as they are",
    ("ChargeOverride", "properties"): "our charge properties, which Lago takes as they are",
    (
        "ChargeFilterData",
        "properties",
    ): "a charge filter's properties, which Lago takes as they are",
    ("UsageEventData", "properties"): "the customer's event properties, forwarded as sent",
}
# Public functions whose return may be untyped, and why.
UNTYPED_RETURNS: dict[str, str] = {
    "stripe.scrub_personal_data": "a part of a Stripe object, scrubbed, for the dj-stripe mirror",
}
# Parameters that take untyped data, and why.
UNTYPED_PARAMETERS = {
    "stripe.parse_event.payload": "a stored webhook body: this is the parser",
    "stripe.payment_result.intent": "a PaymentIntent as Stripe sends it: this is the parser",
    "stripe.mirror_data.data": "a whole Stripe object, for dj-stripe",
    "stripe.scrub_personal_data.value": "a part of a Stripe object, for the dj-stripe mirror",
    "lago.parse_webhook.payload": "a stored webhook body: this is the parser",
    "lago.verify_webhook.headers": "a request's headers (any mapping)",
}


def public_functions():
    for name, module in (("lago", lago), ("stripe", stripe)):
        names = getattr(module, "__all__", None) or vars(module)
        for attr in names:
            function = getattr(module, attr)
            if attr.startswith("_") or not inspect.isfunction(function):
                continue
            if function.__module__.startswith("billing.providers."):
                yield f"{name}.{attr}", function


def untyped_parts(hint, path: str, seen: set) -> list[str]:
    """Where in a type hint a raw payload could pass: `Any`, or a bare container."""
    if hint is typing.Any:
        return [path]
    origin = typing.get_origin(hint)
    if origin is None:
        if hint in (dict, list, tuple, set, frozenset, object):
            return [f"{path} (bare {hint.__name__})"]
        if dataclasses.is_dataclass(hint) and hint not in seen:
            seen.add(hint)
            found = []
            for field, field_hint in typing.get_type_hints(hint).items():
                if (hint.__name__, field) not in WHOLE_OBJECTS:
                    found += untyped_parts(field_hint, f"{hint.__name__}.{field}", seen)
            return found
        return []
    found = []
    for arg in typing.get_args(hint):
        if arg is not Ellipsis:
            found += untyped_parts(arg, path, seen)
    return found


def test_the_provider_surface_is_what_this_test_expects():
    """A test that inspects nothing cannot fail: the surface is really found."""
    names = {name for name, _ in public_functions()}
    assert {"lago.subscription_get", "lago.invoice_get", "stripe.payment_intent_create"} <= names
    assert "lago.request" not in names  # the client's raw call stays inside the package


@pytest.mark.parametrize(
    "name,function", list(public_functions()), ids=[name for name, _ in public_functions()]
)
def test_provider_functions_hand_out_our_types(name, function):
    hints = typing.get_type_hints(function)
    assert "return" in hints, f"{name} has no return annotation"
    unannotated = set(inspect.signature(function).parameters) - set(hints)
    assert unannotated == set(), f"{name}: a parameter without a type takes anything"
    if name not in UNTYPED_RETURNS:
        assert untyped_parts(hints["return"], f"{name} ->", set()) == []
    untyped = [
        f"{name}.{parameter}"
        for parameter, hint in hints.items()
        if parameter != "return"
        and untyped_parts(hint, parameter, set())
        and f"{name}.{parameter}" not in UNTYPED_PARAMETERS
    ]
    assert untyped == []


def test_every_exception_names_something_that_exists():
    """An exception left behind by a change would let the next leak through unseen."""
    functions = dict(public_functions())
    for qualified in UNTYPED_PARAMETERS:
        function, _, parameter = qualified.rpartition(".")
        assert parameter in inspect.signature(functions[function]).parameters, qualified
    assert set(UNTYPED_RETURNS) <= set(functions)
    for class_name, field in WHOLE_OBJECTS:
        fields = {f.name for f in dataclasses.fields(getattr(base, class_name))}
        assert field in fields, (class_name, field)


def test_the_scan_for_untyped_parts_sees_them():
    assert untyped_parts(dict[str, typing.Any], "x", set()) == ["x"]
    assert untyped_parts(list[base.LagoInvoice] | None, "x", set()) == []
    leaky = dataclasses.make_dataclass("Leaky", [("raw", dict)])
    assert untyped_parts(leaky, "x", set()) == ["Leaky.raw (bare dict)"]


# --- Around the functions: the source outside billing/providers ----------------------------
PROVIDER_KEYS = {
    # Lago
    "lago_id",
    "webhook_type",
    "billing_periods",
    "fees",
    "fees_amount_cents",
    "precise_unit_amount",
    "charges_from_datetime",
    "charges_to_datetime",
    "lago_billable_metric_id",
    "external_customer_id",
    "next_plan_code",
    "subscription_at",
    "events_errors",
    "error_details",
    # Stripe
    "last_payment_error",
    "amount_refunded",
    "payment_intent",
    "invoice_settings",
    "default_payment_method",
    "billing_details",
    "client_secret",
}


def _read(node: ast.AST | None) -> tuple[ast.AST, str] | None:
    """(what is read from, the key) for `x["key"]` and `x.get("key")`."""
    if isinstance(node, ast.Subscript):
        receiver, key = node.value, node.slice
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("get", "pop", "setdefault")
        and node.args
    ):
        receiver, key = node.func.value, node.args[0]
    else:
        return None
    if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
        return None
    if isinstance(receiver, ast.BoolOp):  # (payload.get("data") or {}).get("object")
        receiver = receiver.values[0]
    return receiver, key.value


def payload_reads(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        read = _read(node)
        if read is not None:
            receiver, key = read
            if key in PROVIDER_KEYS:
                found.append((node.lineno, key))
            # Stripe's envelope: payload["data"]["object"], however it is reached.
            inner = _read(receiver)
            if key == "object" and inner is not None and inner[1] == "data":
                found.append((node.lineno, "data.object"))
        found += [(node.lineno, f"import {module}") for module in _lago_internals(node)]
    return sorted(found)


def _lago_internals(node: ast.AST) -> list[str]:
    """Modules of the Lago client imported directly: callers use the package."""
    package = "billing.providers.lago"
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = [node.module]
        if node.module == package:
            names += [
                f"{package}.{alias.name}"
                for alias in node.names
                if (PROVIDERS / "lago" / f"{alias.name}.py").exists()
            ]
    else:
        names = []
    return [name for name in names if name.startswith(f"{package}.")]


def modules_outside_providers():
    for package in PROJECT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts and PROVIDERS not in path.parents:
                yield path


def test_no_module_outside_the_providers_reads_a_provider_payload():
    found = [
        f"{path.relative_to(ROOT)}:{line} {what}"
        for path in modules_outside_providers()
        for line, what in payload_reads(ast.parse(path.read_text(), filename=str(path)))
    ]
    assert found == []


def test_the_scan_sees_the_reads_that_used_to_leak():
    """As they stood before the providers returned dataclasses."""
    source = """
from billing.providers.lago.client import request
Plan.objects.update(lago_id=remote["lago_id"])
data = json.loads(body)["data"]["object"]
obj = (payload.get("data") or {}).get("object")
periods = data.get("billing_periods") or []
error = intent.get("last_payment_error") or {}
"""
    assert [what for _, what in payload_reads(ast.parse(source))] == [
        "import billing.providers.lago.client",
        "lago_id",
        "data.object",
        "data.object",
        "billing_periods",
        "last_payment_error",
    ]


def test_our_own_reads_are_not_flagged():
    source = """
from billing.providers import lago
from billing.providers.lago import subscription_get
awaiting = {row["payment_status"]: row["n"] for row in rows}
amount = overrides.get("amount_cents")
properties = charge["properties"]
"""
    assert payload_reads(ast.parse(source)) == []
