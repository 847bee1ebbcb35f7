from django.core.management.base import BaseCommand

from core.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key for a calling service and print it once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The calling service, e.g. 'usage-collector'.")
        parser.add_argument("--read-only", action="store_true", help="Allow GET only.")

    def handle(self, *args, name: str, read_only: bool, **options):
        api_key, raw_key = ApiKey.generate(name=name, read_only=read_only)
        self.stderr.write(
            f"Created {'read-only ' if read_only else ''}API key '{name}' ({api_key.pk}). "
            "It is shown once; store it now."
        )
        self.stdout.write(raw_key)
