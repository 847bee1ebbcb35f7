"""Fixtures of the Lago engine's tests."""

import pytest

from customers.services import payment_method_add
from tests.factories import SubscriptionFactory
from tests.helpers.invoicing import OCT_1, close_periods
from tests.helpers.outbox import drain_outbox


@pytest.fixture
def lago_engine(settings, lago, stripe_enabled, catalog):
    settings.BILLING_ENGINE = "lago"
    drain_outbox()  # catalog and customer reach Lago (and Stripe)
    catalog.acme.refresh_from_db()
    payment_method_add(
        customer=catalog.acme, stripe_payment_method_id="pm_card_visa", set_default=True
    )
    SubscriptionFactory(
        external_id="sub-lago", customer=catalog.acme, plan=catalog.pro, start_at=OCT_1
    )
    drain_outbox()
    close_periods()
    drain_outbox()
    return lago
