"""Wallets in the back office: balances and their read-only ledger, and granting free
credits, behind `wallets.grant_credits`, through the same service as the API's."""

from decimal import Decimal
from typing import ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from billing.wallets import services
from billing.wallets.models import Wallet, WalletTransaction
from core.admin_mixins import ReadOnlyAdminMixin, has_model_permission
from core.exceptions import DomainError
from core.iso import format_money


class LedgerInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = WalletTransaction
    fields: ClassVar[tuple[str, ...]] = (
        "created_at",
        "kind",
        "amount",
        "credits",
        "invoice",
        "note",
    )
    readonly_fields = fields
    extra = 0

    @admin.display(description="Amount")
    def amount(self, obj: WalletTransaction) -> str:
        return format_money(obj.amount_cents, obj.wallet.currency)


class GrantForm(forms.Form):
    credits = forms.DecimalField(min_value=Decimal("0.000001"), max_digits=30, decimal_places=6)
    note = forms.CharField(required=False, max_length=255)


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "customer", "balance", "rate_amount", "status", "expiration_at"]
    list_filter = ["status", "currency"]
    search_fields = ["customer__external_id", "name"]
    list_select_related = ["customer"]
    inlines = [LedgerInline]
    readonly_fields = [*(f.name for f in Wallet._meta.fields), "balance", "grant_button"]

    @admin.display(description="Balance", ordering="balance_cents")
    def balance(self, obj: Wallet) -> str:
        return format_money(obj.balance_cents, obj.currency)

    @admin.display(description="Grant")
    def grant_button(self, obj: Wallet) -> str:
        url = reverse("admin:wallets_wallet_grant", args=[obj.pk])
        return format_html('<a class="button" href="{}">Grant free credits…</a>', url)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/grant/",
                self.admin_site.admin_view(self.grant_view),
                name="wallets_wallet_grant",
            ),
            *super().get_urls(),
        ]

    def grant_view(self, request, object_id):
        wallet = self.get_object(request, unquote(object_id))
        if wallet is None:
            raise Http404("No such wallet.")
        if not has_model_permission(request, Wallet, "grant_credits"):
            raise PermissionDenied
        form = GrantForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.wallet_grant(
                    wallet=wallet,
                    credits=form.cleaned_data["credits"],
                    note=form.cleaned_data["note"] or f"granted by {request.user.get_username()}",
                )
            except DomainError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"{form.cleaned_data['credits']} credits granted.")
                return HttpResponseRedirect(
                    reverse("admin:wallets_wallet_change", args=[wallet.pk])
                )
        return TemplateResponse(
            request,
            "admin/wallets/grant.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Grant free credits to {wallet.customer.external_id}",
                "wallet": wallet,
                "form": form,
                "opts": Wallet._meta,
            },
        )
