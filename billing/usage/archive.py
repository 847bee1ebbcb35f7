"""Archiving a month of usage: its partition written to a gzip file, checked, and dropped
from the database, so the table keeps only the months still read.

A month is archived only when nothing will read its events again: every subscription
period that overlaps it is closed and billed (its invoice is made from them and is immutable), no
event of it waits to be forwarded to Lago, and no event of it belongs to a metric whose
later periods read earlier events (a recurring metric, a weighted sum). The dedupe rows
(billing_usagetransaction) stay: a retried old event is still answered as a duplicate.

The file is CSV with a header (PostgreSQL's COPY format), one row per event, ordered by
timestamp and id; beside it a manifest (JSON) records the month, the row count, the
SHA-256 of the uncompressed CSV and both sizes. Restoring is the reverse (README
"Scaling beyond one PostgreSQL"): create the month's partition, then COPY the file in.
"""

import csv
import gzip
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from django.db import connection, transaction
from django.utils import timezone

from billing.usage.models import UsageRecord
from subscriptions.models import BillableMetric, Subscription, SubscriptionPeriod

TABLE = UsageRecord._meta.db_table
CHUNK = 1 << 20


class ArchiveRefused(Exception):
    """The month cannot be archived yet (or at all); the message says why."""


@dataclass
class Archive:
    month: str
    partition: str
    rows: int
    sha256: str
    csv_bytes: int
    gzip_bytes: int
    table_bytes: int
    file: str
    dropped: bool


def partition_name(month: date) -> str:
    return f"{TABLE}_y{month:%Y}m{month:%m}"


def _bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _attached(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT 1 FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname = %s AND c.relname = %s
            """,
            [TABLE, name],
        )
        return cursor.fetchone() is not None


def check_archivable(month: date) -> None:
    """Raise ArchiveRefused unless nothing will read this month's events again."""
    start, end = _bounds(month)
    if end > timezone.now():
        raise ArchiveRefused(f"{month:%Y-%m} has not ended.")
    unbilled = SubscriptionPeriod.objects.filter(
        start__lt=end, end__gt=start, billed_at__isnull=True
    ).count()
    if unbilled:
        raise ArchiveRefused(
            f"{unbilled} subscription period(s) overlapping {month:%Y-%m} are not billed yet."
        )
    # A period still open is on the subscription itself, not yet a SubscriptionPeriod row.
    open_ = Subscription.objects.filter(
        status=Subscription.Status.ACTIVE,
        current_period_start__lt=end,
        current_period_end__gt=start,
    ).count()
    if open_:
        raise ArchiveRefused(
            f"{open_} active subscription(s) are still in a period overlapping {month:%Y-%m}."
        )
    rows = UsageRecord.objects.filter(timestamp__gte=start, timestamp__lt=end)
    if rows.filter(lago_status=UsageRecord.LagoStatus.PENDING).exists():
        raise ArchiveRefused(f"events of {month:%Y-%m} still wait to be forwarded to Lago.")
    carried = (
        rows.filter(metric__recurring=True)
        | rows.filter(metric__aggregation=BillableMetric.Aggregation.WEIGHTED_SUM)
    ).exists()
    if carried:
        raise ArchiveRefused(
            f"{month:%Y-%m} holds events of a recurring or weighted-sum metric, which later "
            "periods read."
        )


def usage_archive_month(*, month: date, directory: Path, dry_run: bool = False) -> Archive:
    """Write `month`'s partition to DIRECTORY/<partition>.csv.gz, check the file against
    the table, then detach and drop the partition (unless dry_run), in one transaction.
    Re-running for an archived month returns its manifest and changes nothing."""
    month = month.replace(day=1)
    name = partition_name(month)
    target = directory / f"{name}.csv.gz"
    manifest = directory / f"{name}.json"
    if not _attached(name):
        if manifest.exists():
            return Archive(**json.loads(manifest.read_text()))
        raise ArchiveRefused(f"no partition {name} (and no archive of it in {directory}).")
    check_archivable(month)
    directory.mkdir(parents=True, exist_ok=True)
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Writers wait (an event of an archived month is refused anyway: its periods
            # are billed); the copy and the drop see one state of the partition.
            cursor.execute(f'LOCK TABLE "{name}" IN SHARE MODE')
            cursor.execute(f"SELECT count(*), pg_total_relation_size('{name}') FROM \"{name}\"")
            expected, table_bytes = cursor.fetchone()
        digest, csv_bytes = hashlib.sha256(), 0
        partial = target.with_suffix(".gz.partial")
        with gzip.open(partial, "wb", compresslevel=6) as out:
            raw = connection.connection  # psycopg 3: COPY streams, no row in memory
            with raw.cursor() as cursor:
                sql = (
                    f'COPY (SELECT * FROM "{name}" ORDER BY "timestamp", id) '
                    "TO STDOUT WITH (FORMAT csv, HEADER)"
                )
                with cursor.copy(sql) as copy:
                    for block in copy:
                        data = bytes(block)
                        digest.update(data)
                        csv_bytes += len(data)
                        out.write(data)
        rows = _verify(partial, digest.hexdigest())
        if rows != expected:
            partial.unlink()
            raise ArchiveRefused(f"{name}: the file holds {rows} rows, the table {expected}.")
        partial.rename(target)
        archive = Archive(
            month=f"{month:%Y-%m}",
            partition=name,
            rows=rows,
            sha256=digest.hexdigest(),
            csv_bytes=csv_bytes,
            gzip_bytes=target.stat().st_size,
            table_bytes=table_bytes,
            file=str(target),
            dropped=not dry_run,
        )
        if not dry_run:
            with connection.cursor() as cursor:
                cursor.execute(f'ALTER TABLE "{TABLE}" DETACH PARTITION "{name}"')
                cursor.execute(f'DROP TABLE "{name}"')
            manifest.write_text(json.dumps(asdict(archive), indent=2))
    return archive


def _verify(path: Path, sha256: str) -> int:
    """Read the file back: its CSV must hash as what was written; returns its records,
    counted by a CSV reader (a quoted field may hold a line break)."""
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as data:
        while block := data.read(CHUNK):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise ArchiveRefused(f"{path}: the file does not read back as it was written.")
    with gzip.open(path, "rt", encoding="utf-8", newline="") as text:
        return sum(1 for _ in csv.reader(text)) - 1  # the header
