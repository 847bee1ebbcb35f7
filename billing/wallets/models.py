"""Prepaid credits (Lago's wallets): a customer's wallet in one currency, and its
append-only ledger. The balance is the ledger's sum, kept by a database trigger
(migration 0001) that adds each entry to `Wallet.balance_cents` under a CHECK >= 0: an
entry that would overdraw the wallet is refused by PostgreSQL, whatever the code did."""

from django.db import models
from django.db.models import Q

from core.audit import audited
from core.models import TimestampedModel


@audited()
class Wallet(TimestampedModel):
    class Status(models.TextChoices):
        ACTIVE = "active"
        TERMINATED = "terminated"

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="wallets"
    )
    currency = models.CharField(max_length=3)
    name = models.CharField(max_length=255, blank=True, default="")
    # Lago's rate_amount: what one credit is worth, in the currency's major units.
    rate_amount = models.DecimalField(max_digits=20, decimal_places=6, default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    expiration_at = models.DateTimeField(null=True, blank=True)
    terminated_at = models.DateTimeField(null=True, blank=True)
    # Written only by the ledger's trigger: the sum of the wallet's entries.
    balance_cents = models.BigIntegerField(default=0, editable=False)
    # Lago's threshold rule: once an invoice leaves the balance at or below
    # `top_up_threshold_credits`, `top_up_paid_credits` are bought (a top-up invoice,
    # charged to the card) and `top_up_granted_credits` given.
    top_up_threshold_credits = models.DecimalField(
        max_digits=30, decimal_places=6, null=True, blank=True
    )
    top_up_paid_credits = models.DecimalField(
        max_digits=30, decimal_places=6, null=True, blank=True
    )
    top_up_granted_credits = models.DecimalField(
        max_digits=30, decimal_places=6, null=True, blank=True
    )
    lago_id = models.UUIDField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        permissions = [("grant_credits", "Can grant free credits")]
        constraints = [
            models.CheckConstraint(condition=Q(balance_cents__gte=0), name="wallet_not_overdrawn"),
            models.CheckConstraint(condition=Q(rate_amount__gt=0), name="wallet_rate_positive"),
            models.CheckConstraint(
                condition=Q(top_up_threshold_credits__isnull=True)
                | (
                    Q(top_up_threshold_credits__gte=0)
                    & (Q(top_up_paid_credits__gt=0) | Q(top_up_granted_credits__gt=0))
                ),
                name="wallet_top_up_rule_gives_credits",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name or 'wallet'} ({self.currency})"


class WalletTransaction(models.Model):
    """One movement of a wallet, never changed nor deleted: + for a grant or a paid
    purchase, - for what an invoice consumed or what expired."""

    class Kind(models.TextChoices):
        GRANT = "grant"
        PURCHASE = "purchase"
        CONSUMPTION = "consumption"
        EXPIRY = "expiry"
        # What a voided invoice had consumed, given back (Lago's recredit).
        RECREDIT = "recredit"

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="transactions")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount_cents = models.BigIntegerField()
    credits = models.DecimalField(max_digits=38, decimal_places=6)
    # The invoice that consumed the credits, or the top-up invoice that bought them.
    invoice = models.ForeignKey(
        "invoicing.Invoice", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind__in=["grant", "purchase", "recredit"]) & Q(amount_cents__gt=0))
                | (Q(kind__in=["consumption", "expiry"]) & Q(amount_cents__lt=0)),
                name="wallet_entry_sign",
            ),
            # A paid top-up credits its wallet once, however often the news comes.
            models.UniqueConstraint(
                fields=["invoice"], condition=Q(kind="purchase"), name="one_purchase_per_invoice"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_cents}"
