"""Re-encrypt every encrypted field with the newest key of FIELD_ENCRYPTION_KEYS.

Rotation: put the new key first in FIELD_ENCRYPTION_KEYS (keep the old ones after it),
deploy, run this command, then remove the old keys.
"""

import pghistory
import pghistory.models
from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from core.encryption import EncryptedTextField, rotate_token
from core.progress import TerminalProgress

BATCH = 500


class Command(BaseCommand):
    help = "Re-encrypt encrypted fields (including their audit history) with the newest key."

    def handle(self, *args, **options):
        total = 0
        # The audit trail records rotation as what it is, not as an edit by nobody.
        with pghistory.context(reason="encryption key rotation"):
            total = self._rotate_all()
        self.stdout.write(self.style.SUCCESS(f"Done: {total} row(s)."))

    def _rotate_all(self) -> int:
        tables = []
        for model in apps.get_models():
            # A concrete field is one with a column: `column` is None only for the others.
            columns = [
                f.column
                for f in model._meta.concrete_fields
                if isinstance(f, EncryptedTextField) and f.column is not None
            ]
            if columns:
                tables.append((model, columns))
        # The audit history first: rotating a tracked table writes an event per row, which
        # the trigger fills with the new ciphertext. Rotated after, those events would be
        # re-encrypted for nothing, and the count taken below would fall short of them.
        tables.sort(key=lambda table: not issubclass(table[0], pghistory.models.Event))
        # Counted first, so the progress has its denominator.
        rows = sum(model._base_manager.count() for model, _ in tables)
        self.progress = TerminalProgress(self.stdout, label="re-encrypting rows")
        self.progress(0, rows)
        self.done, self.rows = 0, rows
        total = 0
        for model, columns in tables:
            pk_column = model._meta.pk.column
            assert pk_column is not None  # a primary key is a concrete field
            count = self._rotate(model._meta.db_table, pk_column, columns)
            total += count
            self.progress.note(f"{model._meta.label}: {count} row(s) re-encrypted")
        self.progress.close()
        return total

    def _rotate(self, table: str, pk: str, columns: list[str]) -> int:
        quote = connection.ops.quote_name
        done, last = 0, None
        while True:
            # Raw SQL on purpose: the ciphertext itself is rotated, never decrypted into
            # Python objects, and no save() fires signals or outbox syncs.
            with transaction.atomic(), connection.cursor() as cursor:
                where = f"WHERE {quote(pk)} > %s" if last is not None else ""
                cursor.execute(
                    f"SELECT {quote(pk)}, {', '.join(map(quote, columns))} FROM {quote(table)} "
                    f"{where} ORDER BY {quote(pk)} LIMIT {BATCH} FOR UPDATE",
                    [last] if last is not None else [],
                )
                rows = cursor.fetchall()
                for row in rows:
                    values = [rotate_token(v) if v else v for v in row[1:]]
                    assignments = ", ".join(f"{quote(c)} = %s" for c in columns)
                    cursor.execute(
                        f"UPDATE {quote(table)} SET {assignments} WHERE {quote(pk)} = %s",
                        [*values, row[0]],
                    )
            if not rows:
                return done
            done += len(rows)
            last = rows[-1][0]
            self.done += len(rows)
            self.progress(self.done, max(self.rows, self.done))
