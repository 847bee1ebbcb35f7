"""Outbox handlers: Lago holds our wallets and the credits put into them.

Every credit we add reaches Lago as granted credits: a purchase was paid on our own top-up
invoice, collected through our Stripe, so Lago must not invoice it again (its
`paid_credits` would). Consumption is Lago's when it is the engine of record (its invoices
take the credits; our mirror records what they took), and ours otherwise.
"""

from billing.providers import lago
from billing.providers.base import WalletData
from billing.sync.outbox import register, waiting_for
from billing.wallets.models import Wallet, WalletTransaction

K = WalletTransaction.Kind


@register("wallet.sync", "lago")
def wallet_sync_lago(wallet_id: str) -> None:
    wallet = Wallet.objects.select_related("customer").get(pk=wallet_id)
    customer = wallet.customer
    terminated = wallet.status == Wallet.Status.TERMINATED
    lago_id = str(wallet.lago_id) if wallet.lago_id else None
    if lago_id is None:
        if customer.lago_id is None:
            raise waiting_for(f"customer {customer.external_id}")
        # Found by its code (our id) when a try whose answer was lost made it.
        remote = lago.wallet_find(external_customer_id=customer.external_id, code=str(wallet.pk))
        if remote is None and terminated:
            return
        remote = remote or lago.wallet_create(
            wallet=WalletData(
                code=str(wallet.pk),
                name=wallet.name,
                external_customer_id=customer.external_id,
                currency=wallet.currency,
                rate_amount=wallet.rate_amount,
                expiration_at=wallet.expiration_at,
            )
        )
        lago_id = remote.lago_id
        Wallet.objects.filter(pk=wallet.pk).update(lago_id=lago_id)
    if terminated:
        lago.wallet_terminate(lago_id=lago_id)


def _name(entry: WalletTransaction) -> str:
    return f"{entry.kind} {entry.pk}"


@register("wallet_transaction.sync", "lago")
def wallet_transaction_sync_lago(transaction_id: str) -> None:
    entry = WalletTransaction.objects.select_related("wallet").get(pk=transaction_id)
    if entry.kind not in (K.GRANT, K.PURCHASE):
        return
    wallet = entry.wallet
    if wallet.lago_id is None:
        raise waiting_for(f"wallet {wallet.pk}")
    # The ledger is append-only, so what reached Lago is found by the entry's name there.
    if lago.wallet_transaction_find(wallet_lago_id=str(wallet.lago_id), name=_name(entry)):
        return
    lago.wallet_credits_grant(
        wallet_lago_id=str(wallet.lago_id), credits=entry.credits, name=_name(entry)
    )
