"""Pricing by dimension with Lago as the engine: metric and charge filters reach Lago as
its spec has them, and a Lago invoice with one fee per filter agrees with our rating."""

import pytest
import time_machine

from billing.invoicing.lago_mirror import lago_invoices_pull
from billing.invoicing.models import Invoice
from tests.factories import CustomerFactory, SubscriptionFactory
from tests.helpers.invoicing import NOV_1, NOV_15, OCT_1, close_periods, record
from tests.helpers.outbox import drain_outbox
from tests.helpers.pricing import MIXED_OCTOBER, ai_plan, token_metric
from tests.helpers.usage import drain_usage_forwarding

pytestmark = pytest.mark.django_db


@pytest.fixture
def lago_ai(settings, lago):
    settings.BILLING_ENGINE = "lago"
    acme = CustomerFactory(external_id="acme", currency="USD")
    plan = ai_plan(token_metric())
    drain_outbox()  # the metric, the plan and the customer reach Lago
    SubscriptionFactory(external_id="sub-ai", customer=acme, plan=plan, start_at=OCT_1)
    drain_outbox()
    return lago


def test_metric_and_charge_filters_reach_lago(lago_ai):
    metric = lago_ai.billable_metrics["llm_tokens"]
    assert metric["filters"] == [
        {"key": "model", "values": ["small", "large"]},
        {"key": "direction", "values": ["input", "output"]},
    ]
    (charge,) = lago_ai.plans["ai"]["charges"]
    assert [(f["values"], f["properties"]) for f in charge["filters"]] == [
        ({"model": ["small"], "direction": ["input"]}, {"amount": "0.0001"}),
        ({"model": ["small"], "direction": ["output"]}, {"amount": "0.0004"}),
        ({"model": ["large"], "direction": ["input"]}, {"amount": "0.001"}),
        ({"model": ["large"], "direction": ["output"]}, {"amount": "0.004"}),
    ]
    assert charge["properties"] == {"amount": "0.01"}


def test_a_lago_invoice_with_filter_fees_matches_our_rating(lago_ai, client):
    with time_machine.travel(NOV_15, tick=True):
        record(client, "sub-ai", "llm_tokens", MIXED_OCTOBER)
        drain_usage_forwarding()
        close_periods()
        drain_outbox()
    # The fake rates the period itself, from the events it received (Lago's rules).
    issued = lago_ai.issue_invoice(
        external_subscription_id="sub-ai", charges_from=OCT_1, charges_to=NOV_1
    )
    assert issued["fees_amount_cents"] == 1000 + 350 + 600 + 500 + 900

    lago_invoices_pull()

    invoice = Invoice.objects.get(lago_id=issued["lago_id"])
    assert invoice.reconciliation == "matched", invoice.reconciliation_note
    assert [(line.description, line.filter, line.amount_cents) for line in invoice.lines.all()] == [
        ("AI", "", 1000),
        ("LLM tokens — small, input", "small, input", 350),
        ("LLM tokens — small, output", "small, output", 600),
        ("LLM tokens — large, input", "large, input", 500),
        ("LLM tokens — large, output", "large, output", 900),
    ]


def test_a_filter_priced_differently_in_lago_is_flagged(lago_ai, client):
    with time_machine.travel(NOV_15, tick=True):
        record(client, "sub-ai", "llm_tokens", MIXED_OCTOBER)
        drain_usage_forwarding()
        close_periods()
        drain_outbox()
    # Lago's copy of one filter's price drifted from ours (changed there by hand).
    lago_ai.plans["ai"]["charges"][0]["filters"][3]["properties"] = {"amount": "0.005"}

    issued = lago_ai.issue_invoice(
        external_subscription_id="sub-ai", charges_from=OCT_1, charges_to=NOV_1
    )
    lago_invoices_pull()

    invoice = Invoice.objects.get(lago_id=issued["lago_id"])
    assert invoice.reconciliation == "mismatch"
    assert "3575" in invoice.reconciliation_note and "3350" in invoice.reconciliation_note
