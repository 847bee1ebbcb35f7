"""Notes staff leave on a customer (the back office's only table; the rest it reads from
the billing apps). Notes are never edited nor deleted: a correction is a new note."""

from django.conf import settings
from django.db import models


class StaffNote(models.Model):
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="staff_notes"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    body = models.TextField(max_length=4000)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"note on {self.customer_id} by {self.author_id}"
