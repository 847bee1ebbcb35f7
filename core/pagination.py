from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Cursor pages ordered newest first; never a COUNT over the table."""

    page_size = 50
    max_page_size = 500
    page_size_query_param = "page_size"
    ordering = ("-created_at", "-id")
