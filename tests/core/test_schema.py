"""The OpenAPI document (`/api/schema/`) is one a client team can generate a client from:
it generates without a warning and validates, and every operation is written for its
users (summary, description, a resource tag), documents the errors it answers in the one
error shape, its `Idempotency-Key` header and its pagination. What it says is also checked
against what the API answers, in test_schema_contract.py."""

import inspect

import pytest
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from openapi_spec_validator import validate

from core.views import TransactionalIdempotentMixin
from tests.helpers.openapi import api_schema, generate_schema, operations

ERROR_REF = "#/components/schemas/Error"
WRITES = ("POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(scope="module")
def schema():
    return api_schema()


@pytest.fixture(scope="module")
def views():
    """{(METHOD, path template): the view class} of every operation."""
    generator = SchemaGenerator()
    generator._initialise_endpoints()
    return {
        (method, path): type(view) for path, _, method, view in generator._get_paths_and_endpoints()
    }


def test_the_document_generates_without_warnings_and_validates():
    schema, problems = generate_schema()

    assert problems == []
    validate_schema(schema)  # drf-spectacular's check of OpenAPI 3.0
    validate(schema)  # openapi-spec-validator's, as for Lago's spec in tests/fakes
    assert len(operations(schema)) >= 35


def test_every_operation_is_written_for_its_users(schema, views):
    for method, path, operation in operations(schema):
        name = operation["operationId"]
        assert operation.get("summary"), name
        description = operation.get("description", "")
        assert len(description) >= 30, name
        # No developer note (a docstring of the view, its bases or the action) leaks in.
        view = views[(method, path)]
        notes = [inspect.getdoc(cls) for cls in view.__mro__] + [
            inspect.getdoc(member) for _, member in inspect.getmembers(view, inspect.isfunction)
        ]
        for note in filter(None, notes):
            assert note.splitlines()[0] not in description, (name, note)


def test_component_descriptions_are_no_docstrings(schema):
    assert settings.SPECTACULAR_SETTINGS["DISABLE_DOCSTRING_DESCRIPTIONS"] is True
    described = {
        name: component["description"]
        for name, component in schema["components"]["schemas"].items()
        if component.get("description") and not name.endswith("Enum")
    }
    assert set(described) == {"Error"}, described


def test_every_operation_sits_under_a_described_resource_tag(schema):
    declared = {tag["name"]: tag.get("description") for tag in schema["tags"]}
    assert all(declared.values()), declared
    used = set()
    for _, _, operation in operations(schema):
        tags = operation.get("tags", [])
        assert len(tags) == 1 and tags[0] in declared, (operation["operationId"], tags)
        used.add(tags[0])
    assert used == set(declared)
    assert {"Customers", "Payment methods", "Subscriptions", "Usage", "Invoices"} <= used


def test_every_error_response_has_the_one_error_shape(schema):
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"type", "errors"}
    item = schema["components"]["schemas"]["ErrorItem"]
    assert set(item["properties"]) == {"code", "detail", "attr"}
    assert item["properties"]["attr"]["nullable"] is True
    for _, _, operation in operations(schema):
        for status, response in operation["responses"].items():
            if status == "default" or int(status) >= 400:
                content = response["content"]["application/json"]["schema"]
                assert content == {"$ref": ERROR_REF}, (operation["operationId"], status)
                assert response["description"], (operation["operationId"], status)


def test_every_operation_documents_the_errors_it_can_answer(schema):
    for method, path, operation in operations(schema):
        name, responses = operation["operationId"], operation["responses"]
        assert {"400", "401", "429", "default"} <= set(responses), name
        assert operation["security"] == [{"ApiKey": []}], name
        if method in WRITES:
            assert "403" in responses, name  # a read-only key
        if "{" in path:
            assert "`not_found`" in responses["404"]["description"], name
        if any(p["name"] == "cursor" for p in operation.get("parameters", [])):
            assert "404" in responses, name  # a cursor this list did not give
            assert "page_size" in {p["name"] for p in operation["parameters"]}, name
        for status in ("409", "422", "402", "503"):
            if status in responses:
                assert "`" in responses[status]["description"], (name, status)
    scheme = schema["components"]["securitySchemes"]["ApiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_operations_that_honour_idempotency_key_document_it(schema, views):
    for method, path, operation in operations(schema):
        view = views[(method, path)]
        honours = method == "POST" and issubclass(view, TransactionalIdempotentMixin)
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        name, responses = operation["operationId"], operation["responses"]
        assert ("Idempotency-Key" in headers) == honours, name
        if honours:
            assert "`idempotency_key_in_use`" in responses["409"]["description"], name
            assert "`idempotency_key_reused`" in responses["422"]["description"], name
            success = min(status for status in responses if status.startswith("2"))
            assert "Idempotent-Replayed" in responses[success]["headers"], name


@pytest.mark.parametrize(
    ("operation_id", "status", "codes"),
    [
        ("CreateCustomer", "409", ["customer_exists"]),
        ("UpdateCustomer", "409", ["currency_locked"]),
        ("AddPaymentMethod", "402", ["card_declined"]),
        ("AddPaymentMethod", "409", ["payment_method_belongs_to_other_customer"]),
        ("AddPaymentMethod", "422", ["resource_missing"]),
        ("AddPaymentMethod", "503", ["provider_unavailable"]),
        ("CreateSetupIntent", "409", ["stripe_customer_pending"]),
        ("UpdatePlan", "409", ["plan_in_use"]),
        ("UpdateBillableMetric", "409", ["metric_in_use"]),
        ("CreateSubscription", "409", ["subscription_exists", "currency_mismatch"]),
        ("CreateSubscription", "422", ["start_at_in_past", "start_at_out_of_range"]),
        ("CancelSubscription", "409", ["invalid_transition"]),
        ("ReactivateSubscription", "409", ["invalid_transition"]),
        ("RecordUsage", "409", ["transaction_id_conflict", "period_closed"]),
        ("RecordUsage", "422", ["unknown_metric", "subscription_not_billable"]),
        ("GenerateInvoice", "422", ["no_closed_period", "period_not_closed"]),
        ("VoidInvoice", "409", ["invoice_paid", "payment_in_progress"]),
        ("PayInvoice", "409", ["no_default_payment_method"]),
    ],
)
def test_the_domain_codes_are_listed_under_their_status(schema, operation_id, status, codes):
    (operation,) = [op for _, _, op in operations(schema) if op["operationId"] == operation_id]
    description = operation["responses"][status]["description"]
    for code in codes:
        assert f"`{code}`" in description
