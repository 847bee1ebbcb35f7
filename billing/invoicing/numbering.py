"""Gapless numbers for issued documents: invoices per issuer, credit notes in their own
sequence per issuer (`<issuer>:CN`)."""

from django.db import connection

from billing.invoicing.models import InvoiceSequence


def next_number(sequence: str, prefix: str) -> str:
    """Take the sequence's next number: one UPDATE that locks the sequence row until the
    issuing transaction ends (so numbers are gapless), creating the row the first time
    with `prefix`."""
    return take_numbers(sequence, prefix, 1)[0]


def take_numbers(sequence: str, prefix: str, count: int) -> list[str]:
    """The sequence's next `count` numbers, taken in one UPDATE (a billing run's page)."""
    if count <= 0:
        return []
    table = InvoiceSequence._meta.db_table
    with connection.cursor() as cursor:
        for _ in range(2):
            cursor.execute(
                f"UPDATE {table} SET next_value = next_value + %s WHERE issuer = %s "
                "RETURNING prefix, next_value - %s",
                [count, sequence, count],
            )
            row = cursor.fetchone()
            if row is not None:
                stored_prefix, first = row
                return [f"{stored_prefix}-{value:06d}" for value in range(first, first + count)]
            cursor.execute(
                f"INSERT INTO {table} (issuer, prefix, next_value) VALUES (%s, %s, 1) "
                "ON CONFLICT (issuer) DO NOTHING",
                [sequence, prefix],
            )
    raise RuntimeError(f"sequence {sequence!r} could not be created")
