from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Cursor pages ordered newest first; never a COUNT over the table."""

    page_size = 50
    max_page_size = 500
    page_size_query_param = "page_size"
    cursor_query_description = (
        "Where the page starts: take it from the `next` or `previous` URL of the page "
        "before; omit it for the first page."
    )
    page_size_query_description = (
        f"Results per page (default {page_size}, at most {max_page_size})."
    )
    ordering = ("-created_at", "-id")
