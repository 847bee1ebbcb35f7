"""CSV export of an admin list, as filtered on screen: "Export CSV" beside the list's
buttons downloads every row the filters, search and date drill-down select (not only the
page shown), streamed so a hundred thousand rows never sit in memory.

A ModelAdmin lists `csv_columns` as (header, function of a row) and includes
admin/includes/csv_export.html in its change_list's object-tools. Exporting needs the
model's view permission, as the list does.

A cell that a spreadsheet would read as a formula (one starting with =, +, -, @, a tab or
a carriage return: a customer's name is the customer's input) is prefixed with an
apostrophe, which spreadsheets show as text (OWASP's "CSV injection"). Amounts are written
twice: in major units as a decimal string ("58.80") for people, and in minor units for
machines, so nothing is lost to rounding either way.
"""

import csv
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, ClassVar

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone

from core.iso import currency_exponent
from core.replica import replica_reads

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 2000

Column = tuple[str, Callable[[Any], Any]]


def safe_cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if isinstance(value, str) and text.startswith(FORMULA_START):
        return "'" + text
    return text


def major(cents: int | None, currency: str) -> Decimal | None:
    """Minor units in the currency's major unit, exactly: 5880 USD -> 58.80."""
    if cents is None:
        return None
    exponent = currency_exponent(currency)
    return Decimal(cents).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_rows(columns: list[Column], rows) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow([header for header, _ in columns])
    for row in rows:
        yield writer.writerow([safe_cell(value(row)) for _, value in columns])


class CsvExportMixin:
    csv_columns: ClassVar[list[Column]] = []
    csv_name: ClassVar[str] = ""

    def get_urls(self):
        opts = self.model._meta  # type: ignore[attr-defined]
        site = self.admin_site  # type: ignore[attr-defined]
        return [
            path(
                "export.csv",
                site.admin_view(self.csv_export_view),
                name=f"{opts.app_label}_{opts.model_name}_csv",
            ),
            *super().get_urls(),  # type: ignore[misc]
        ]

    def csv_export_view(self, request):
        if not self.has_view_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        opts = self.model._meta  # type: ignore[attr-defined]
        # The list's own filtering (filters, search, date drill-down), without its paging.
        try:
            # From the read replica when there is one (core/replica.py), the list's own
            # counts included: an export reads every row of the list.
            with replica_reads() as database:
                changelist = self.get_changelist_instance(request)  # type: ignore[attr-defined]
        except IncorrectLookupParameters:
            # A hand-edited filter: back to the list, which says so as it does for itself.
            site = self.admin_site.name  # type: ignore[attr-defined]
            changelist_url = reverse(f"{site}:{opts.app_label}_{opts.model_name}_changelist")
            return HttpResponseRedirect(f"{changelist_url}?{ERROR_FLAG}=1")
        # The rows are streamed after this view returns, outside replica_reads(): the
        # queryset names its database.
        rows = changelist.queryset.using(database).iterator(chunk_size=CHUNK)
        name = self.csv_name or opts.model_name
        response = StreamingHttpResponse(
            csv_rows(self.csv_columns, rows), content_type="text/csv; charset=utf-8"
        )
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
        return response
