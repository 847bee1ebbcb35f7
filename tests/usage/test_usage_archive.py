"""Archiving a month of usage (billing/usage/archive.py, `manage.py
usage_archive_partition`): the partition's rows go to a checked gzip file and the
partition is dropped, only once nothing will read them again; a second run changes
nothing; the file restores the rows exactly."""

import csv
import gzip
import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection

from billing.usage.archive import partition_name
from billing.usage.models import UsageRecord
from billing.usage.services import usage_record_batch
from subscriptions.models import SubscriptionPeriod
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

MONTH = date(2026, 1, 1)  # inside the partitions the migration made (12 months back)
PARTITION = partition_name(MONTH)


@pytest.fixture
def january(catalog):
    """A subscription billed monthly since 2025-12-01, with events on 3 days of January
    (one with a line break in its transaction id) and one in February; then moved on, as
    if January's period were closed and billed."""
    start = datetime(2025, 12, 1, tzinfo=UTC)
    with time_machine.travel(datetime(2026, 2, 10, tzinfo=UTC), tick=False):
        subscription = SubscriptionFactory(
            external_id="arch-1", customer=catalog.acme, plan=catalog.pro, start_at=start
        )
        events = [
            {
                "transaction_id": tid,
                "subscription": "arch-1",
                "metric": "tokens",
                "timestamp": ts,
                "properties": {"tokens": n, "note": 'a "quoted", multi\nline value'},
            }
            for tid, ts, n in [
                ("jan-1", datetime(2026, 1, 2, tzinfo=UTC), 10),
                ("jan-2\nsecond line", datetime(2026, 1, 15, tzinfo=UTC), 20),
                ("jan-3", datetime(2026, 1, 31, 23, 59, tzinfo=UTC), 30),
                ("feb-1", datetime(2026, 2, 1, tzinfo=UTC), 40),
            ]
        ]
        results = usage_record_batch(events=events)
    assert [r.status for r in results] == ["created"] * 4
    subscription.current_period_start = datetime(2026, 2, 1, tzinfo=UTC)
    subscription.current_period_end = datetime(2026, 3, 1, tzinfo=UTC)
    subscription.save()
    return subscription


def partition_exists() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [PARTITION])
        return cursor.fetchone()[0] is not None


def archive(tmp_path, *extra):
    out = io.StringIO()
    call_command(
        "usage_archive_partition", "--month", "2026-01", "--to", str(tmp_path), *extra, stdout=out
    )
    return out.getvalue()


def test_a_closed_month_goes_to_a_checked_file_and_leaves_the_table(january, tmp_path):
    before = {
        r.transaction_id: r
        for r in UsageRecord.objects.filter(timestamp__lt=datetime(2026, 2, 1, tzinfo=UTC))
    }

    said = archive(tmp_path)

    assert f"{PARTITION}: 3 events" in said
    assert not partition_exists()
    assert list(UsageRecord.objects.values_list("transaction_id", flat=True)) == ["feb-1"]
    manifest = json.loads((tmp_path / f"{PARTITION}.json").read_text())
    assert manifest["rows"] == 3 and manifest["dropped"] is True
    with gzip.open(tmp_path / f"{PARTITION}.csv.gz", "rt", newline="") as text:
        rows = list(csv.DictReader(text))
    assert [row["transaction_id"] for row in rows] == ["jan-1", "jan-2\nsecond line", "jan-3"]
    for row in rows:
        stored = before[row["transaction_id"]]
        assert json.loads(row["properties"]) == stored.properties
        assert row["subscription_id"] == str(stored.subscription_id)


def test_a_second_run_changes_nothing(january, tmp_path):
    archive(tmp_path)
    written = (tmp_path / f"{PARTITION}.csv.gz").read_bytes()

    said = archive(tmp_path)

    assert f"{PARTITION}: 3 events" in said
    assert (tmp_path / f"{PARTITION}.csv.gz").read_bytes() == written


def test_the_file_restores_the_rows_exactly(january, tmp_path):
    wanted = sorted(
        UsageRecord.objects.filter(timestamp__lt=datetime(2026, 2, 1, tzinfo=UTC)).values_list(
            "id", "transaction_id", "value", "properties"
        )
    )
    archive(tmp_path)

    with connection.cursor() as cursor:
        cursor.execute("SELECT billing_usage_partition(%s)", [MONTH])
    sql = f"COPY {PARTITION} FROM STDIN WITH (FORMAT csv, HEADER)"
    with (
        gzip.open(tmp_path / f"{PARTITION}.csv.gz", "rb") as data,
        connection.connection.cursor() as cursor,
        cursor.copy(sql) as copy,
    ):
        copy.write(data.read())

    restored = sorted(
        UsageRecord.objects.filter(timestamp__lt=datetime(2026, 2, 1, tzinfo=UTC)).values_list(
            "id", "transaction_id", "value", "properties"
        )
    )
    assert restored == wanted


def test_a_dry_run_writes_the_file_and_keeps_the_table(january, tmp_path):
    said = archive(tmp_path, "--dry-run")

    assert "dry run" in said
    assert partition_exists()
    assert UsageRecord.objects.count() == 4
    assert (tmp_path / f"{PARTITION}.csv.gz").exists()


def test_a_month_with_an_unbilled_period_is_refused(january, tmp_path):
    SubscriptionPeriod.objects.create(
        subscription=january,
        start=datetime(2026, 1, 1, tzinfo=UTC),
        end=datetime(2026, 2, 1, tzinfo=UTC),
        nominal_start=datetime(2026, 1, 1, tzinfo=UTC),
        nominal_end=datetime(2026, 2, 1, tzinfo=UTC),
        reason=SubscriptionPeriod.Reason.RENEWED,
    )

    with pytest.raises(CommandError, match="not billed yet"):
        archive(tmp_path)
    assert partition_exists() and UsageRecord.objects.count() == 4


def test_a_month_a_subscription_is_still_in_is_refused(january, tmp_path):
    january.current_period_start = datetime(2026, 1, 1, tzinfo=UTC)
    january.current_period_end = datetime(2026, 2, 1, tzinfo=UTC) + timedelta(days=365)
    january.save()

    with pytest.raises(CommandError, match="still in a period"):
        archive(tmp_path)
    assert partition_exists()


@pytest.mark.parametrize("month", ["2026-13", "january", "2099-01"])
def test_a_bad_or_open_month_is_refused(db, tmp_path, month):
    with pytest.raises(CommandError):
        call_command("usage_archive_partition", "--month", month, "--to", str(tmp_path))
