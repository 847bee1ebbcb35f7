"""The three staff roles, kept here in code and applied to their groups by migration 0001
and after every `migrate` (so a permission added later reaches its role).

- viewer: reads everything billing, changes nothing;
- billing operator: customers, subscriptions, usage corrections, retries, replays,
  coupons, finalizing invoices and retrying payments;
- finance admin: what the operator does, plus voids, credit notes and refunds, credit
  grants, one-off invoices and API keys.

Superusers are for engineering: only they see dj-stripe's and Celery beat's sections (and
only to read them), since no role holds a permission there.
"""

from collections.abc import Iterable

VIEWER = "viewer"
OPERATOR = "billing operator"
FINANCE = "finance admin"
ROLES = (VIEWER, OPERATOR, FINANCE)

# The apps staff work in: each role sees all of them.
BILLING_APPS = (
    "customers",
    "subscriptions",
    "usage",
    "invoicing",
    "payments",
    "coupons",
    "wallets",
    "sync",
    "webhooks",
    "core",
    "backoffice",
)

OPERATOR_PERMISSIONS = (
    "customers.add_customer",
    "customers.change_customer",
    "customers.manage_payment_method",
    "subscriptions.add_subscription",
    "subscriptions.change_subscription",
    "subscriptions.cancel_subscription",
    "subscriptions.change_subscription_plan",
    "subscriptions.reactivate_subscription",
    "subscriptions.add_plan",
    "subscriptions.change_plan",
    "subscriptions.add_charge",
    "subscriptions.change_charge",
    "subscriptions.delete_charge",
    "subscriptions.add_billablemetric",
    "subscriptions.change_billablemetric",
    "usage.retry_usageforwardingrun",
    "invoicing.change_invoice",
    "invoicing.add_addon",
    "invoicing.change_addon",
    "sync.retry_outboxmessage",
    "webhooks.replay_webhookevent",
    "coupons.add_coupon",
    "coupons.change_coupon",
    "coupons.apply_coupon",
    "coupons.add_appliedcoupon",
    "coupons.change_appliedcoupon",
    "backoffice.add_staffnote",
)

FINANCE_PERMISSIONS = (
    *OPERATOR_PERMISSIONS,
    "invoicing.void_invoice",
    "invoicing.issue_credit_note",
    "invoicing.void_credit_note",
    "invoicing.create_one_off_invoice",
    "invoicing.delete_addon",
    "wallets.add_wallet",
    "wallets.change_wallet",
    "wallets.grant_credits",
    "core.add_apikey",
    "core.change_apikey",
    "core.revoke_apikey",
)

EXTRA = {VIEWER: (), OPERATOR: OPERATOR_PERMISSIONS, FINANCE: FINANCE_PERMISSIONS}


def _key(name: str) -> tuple[str, str]:
    app, codename = name.split(".", 1)
    return app, codename


def wanted(role: str, available: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """(app_label, codename) pairs the role holds, among those that exist: every role
    views all billing apps (API keys are listed, never their secrets)."""
    exists = set(available)
    views = {
        (app, code) for app, code in exists if app in BILLING_APPS and code.startswith("view_")
    }
    return views | {_key(name) for name in EXTRA[role] if _key(name) in exists}


def roles_sync(*, group_model, permission_model) -> None:
    """Make each role's group hold exactly its permissions (models passed in, so a
    migration can give its historical ones)."""
    available = {
        (app, code): pk
        for pk, app, code in permission_model.objects.values_list(
            "pk", "content_type__app_label", "codename"
        )
    }
    for role in ROLES:
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.set([available[key] for key in wanted(role, available)])
