"""An event racing the invoicing of its period: recording holds the subscription FOR KEY
SHARE, invoicing FOR UPDATE. An event whose recording waited for an invoicing to commit
must see that invoicing's billed period (and be refused as `period_closed`), not count
into a period already invoiced, where it would never be billed."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from billing.usage.models import UsageRecord
from billing.usage.services import usage_record_batch
from subscriptions.models import Subscription, SubscriptionPeriod
from tests.factories import SubscriptionFactory
from tests.helpers.catalog import build_catalog


@pytest.mark.django_db(transaction=True)
def test_an_event_that_waited_for_an_invoicing_sees_its_period_billed():
    catalog = build_catalog()
    now = timezone.now()
    subscription = SubscriptionFactory(
        external_id="sub-race",
        customer=catalog.acme,
        plan=catalog.pro,
        start_at=now - timedelta(days=40),
    )
    event = {
        "transaction_id": "late",
        "subscription": "sub-race",
        "metric": "tokens",
        "timestamp": now - timedelta(days=20),
        "properties": {"tokens": 5},
    }
    locked, results = threading.Event(), []

    def invoice() -> None:
        try:
            with transaction.atomic():
                Subscription.objects.select_for_update().get(pk=subscription.pk)
                SubscriptionPeriod.objects.create(
                    subscription=subscription,
                    start=now - timedelta(days=40),
                    end=now - timedelta(days=10),
                    nominal_start=now - timedelta(days=40),
                    nominal_end=now - timedelta(days=10),
                    reason=SubscriptionPeriod.Reason.RENEWED,
                    billed_at=now,
                )
                locked.set()
                time.sleep(1.0)  # the recording below starts, and waits for this lock
        finally:
            connection.close()

    def record() -> None:
        try:
            locked.wait(10)
            results.extend(usage_record_batch(events=[event]))
        finally:
            connection.close()

    threads = [threading.Thread(target=invoice), threading.Thread(target=record)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    (result,) = results
    assert result.status == "invalid", result
    assert result.errors[0]["code"] == "period_closed"
    assert not UsageRecord.objects.filter(transaction_id="late").exists()
