from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing.usage.archive import ArchiveRefused, usage_archive_month


class Command(BaseCommand):
    help = (
        "Archive a month of usage events: its partition to DIR/<partition>.csv.gz (checked "
        "against the table), then dropped. Refused while any period overlapping it is "
        "unbilled. Re-running for an archived month changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="YYYY-MM, a month that has ended.")
        parser.add_argument("--to", required=True, type=Path, help="Directory for the file.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Write and check the file; keep the table."
        )

    def handle(self, *args, month: str, to: Path, dry_run: bool, **options):
        try:
            first = date.fromisoformat(f"{month}-01")
        except ValueError:
            raise CommandError(f"--month: YYYY-MM expected, not {month!r}") from None
        try:
            archive = usage_archive_month(month=first, directory=to, dry_run=dry_run)
        except ArchiveRefused as exc:
            raise CommandError(str(exc)) from exc
        per_event = archive.gzip_bytes / archive.rows if archive.rows else 0
        in_table = archive.table_bytes / archive.rows if archive.rows else 0
        self.stdout.write(
            f"{archive.partition}: {archive.rows} events -> {archive.file} "
            f"({archive.gzip_bytes:,} bytes, {per_event:.1f} B/event; {in_table:.1f} B/event "
            f"in the table){'' if archive.dropped else ' (dry run: table kept)'}"
        )
