"""`manage.py run_billing`: the billing run now, in the terminal, with its progress (the
beat runs the same every BILLING_RUN_SECONDS)."""

from django.core.management.base import BaseCommand

from billing.invoicing.billing_run import billing_run
from billing.invoicing.tasks import run_summary
from core.progress import TerminalProgress


class Command(BaseCommand):
    help = "Invoice every closed, unbilled period now (local engine), showing progress."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--limit", type=int, help="At most this many periods.")

    def handle(self, *args, limit: int | None, **options) -> None:
        progress = TerminalProgress(self.stdout, label="billing run")
        report = billing_run(limit=limit, progress=progress)
        progress.close()
        for error in report.errors:
            self.stderr.write(error)
        self.stdout.write(self.style.SUCCESS(f"Billing run: {run_summary(report)}."))
