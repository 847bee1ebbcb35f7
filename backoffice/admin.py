"""The customer's and the subscription's admin pages with their story (customer_story.py)
and the notes staff leave on a customer: those apps' own admins, extended from above,
since the story reads every billing app."""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from backoffice import customer_story as story
from backoffice.models import StaffNote
from billing.invoicing.models import Invoice
from billing.invoicing.preview import invoice_preview
from core.exceptions import DomainError
from core.iso import format_money
from customers.admin import CustomerAdmin
from customers.models import Customer
from subscriptions.admin import SubscriptionAdmin
from subscriptions.models import Subscription

NOTE_PERMISSION = "backoffice.add_staffnote"


def _story(customer: Customer) -> dict:
    money = lambda cents: format_money(cents, customer.currency)  # noqa: E731
    balance = story.balance(customer)
    return {
        "story_balance": [
            ("Invoiced", money(balance.invoiced_cents), False),
            ("Paid by card", money(balance.paid_cents), False),
            ("Owed", money(balance.due_cents), False),
            ("Overdue", money(balance.overdue_cents), balance.overdue_cents > 0),
        ],
        "story_usage": [
            (
                current,
                money(current.fees_cents),
                [
                    (line, f"{line.units.normalize():f}", money(line.amount_cents))
                    for line in current.usage
                ],
            )
            for current in story.current_usage(customer)
        ],
        "story_invoices": [
            (invoice, money(invoice.total_amount_cents), money(invoice.amount_due_cents))
            for invoice in story.invoices(customer)
        ],
        "story_credit_notes": [
            (note, money(note.total_amount_cents)) for note in story.credit_notes(customer)
        ],
        "story_wallets": [(w, money(w.balance_cents)) for w in story.wallets(customer)],
        "story_coupons": story.coupons(customer),
        "story_attempts": [(a, money(a.amount_cents)) for a in story.attempts(customer)],
        "story_timeline": story.timeline(customer),
    }


admin.site.unregister(Customer)


@admin.register(Customer)
class CustomerStoryAdmin(CustomerAdmin):
    change_form_template = "backoffice/customer_change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        customer = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if customer is not None:
            extra.update(_story(customer))
            extra["can_add_note"] = request.user.has_perm(NOTE_PERMISSION)
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/note/",
                self.admin_site.admin_view(require_POST(self.note_view)),
                name="customers_customer_note",
            ),
            *super().get_urls(),
        ]

    def note_view(self, request, object_id):
        customer = self.get_object(request, unquote(object_id))
        if customer is None:
            raise Http404("No such customer.")
        if not request.user.has_perm(NOTE_PERMISSION):
            raise PermissionDenied
        body = request.POST.get("body", "").strip()[:4000]
        if body:
            StaffNote.objects.create(customer=customer, author=request.user, body=body)
            messages.success(request, "Note added.")
        else:
            messages.error(request, "A note needs some text.")
        return HttpResponseRedirect(reverse("admin:customers_customer_change", args=[customer.pk]))


def _subscription_story(subscription: Subscription) -> dict:
    money = lambda cents: format_money(cents, subscription.plan.currency)  # noqa: E731
    context: dict = {
        "sub_invoices": [
            (invoice, money(invoice.total_amount_cents), money(invoice.amount_due_cents))
            for invoice in Invoice.objects.filter(subscription=subscription).order_by(
                "-period_start"
            )[: story.SHOWN]
        ]
    }
    if subscription.status != Subscription.Status.ACTIVE or settings.BILLING_ENGINE != "local":
        return context
    try:
        preview = invoice_preview(subscription=subscription)
    except DomainError:
        return context
    context["sub_preview"] = {
        "start": preview.period_start,
        "end": preview.period_end,
        "lines": [
            (line.description, f"{line.units.normalize():f}", money(line.amount_cents))
            for line in preview.lines
        ],
        "total": money(preview.totals.total_amount_cents),
    }
    return context


admin.site.unregister(Subscription)


@admin.register(Subscription)
class SubscriptionStoryAdmin(SubscriptionAdmin):
    """The subscription's page with what its current period would bill as of now (its
    fee, and its usage so far through the invoice's own rating) and its invoices."""

    change_form_template = "backoffice/subscription_change_form.html"

    def detail_action_summary(self, action: str, obj: Subscription) -> str:
        said = super().detail_action_summary(action, obj)
        if action != "terminate_now" or settings.BILLING_ENGINE != "local":
            return said
        try:
            bill = invoice_preview(subscription=obj, terminated_at=timezone.now())
        except DomainError:
            return said
        money = lambda cents: format_money(cents, bill.currency)  # noqa: E731
        lines = "; ".join(f"{fee.description} {money(fee.amount_cents)}" for fee in bill.lines)
        return (
            f"{said} Billed now, as of this minute: {lines}; total "
            f"{money(bill.totals.total_amount_cents)} (tax included, before credits)."
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        subscription = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if subscription is not None:
            extra.update(_subscription_story(subscription))
        return super().change_view(request, object_id, form_url, extra)
