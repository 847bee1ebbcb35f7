"""What invoicing tells the layers above (billing.payments subscribes in its ready())."""

from core.events import Event

payment_requested = Event(
    "payment_requested",
    "An issued invoice (invoice=, now=) is owed and should be collected. Called in the "
    "issuing transaction, before the invoice is saved: the collector sets the invoice's "
    "collection fields (next attempt, blocked reason) and records its work in the outbox.",
)
payments_requested = Event(
    "payments_requested",
    "payment_requested for many issued invoices at once (invoices=, now=): a billing "
    "run's page. The same contract, one call.",
)
payment_in_flight = Event(
    "payment_in_flight",
    "A question (invoice=): may a charge for this invoice be in progress right now? Asked "
    "under the invoice's row lock before a void; subscribers answer True or False.",
)
credits_consumed = Event(
    "credits_consumed",
    "An invoice being issued (invoice=) took prepaid credits off the customer's wallets. "
    "Called in the issuing transaction, after the invoice is saved: the top-up rules run.",
)
refund_requested = Event(
    "refund_requested",
    "A credit note (credit_note=) sends money back to the card. Called in the issuing "
    "transaction: the refunder records its work (a pending refund, an outbox row) there.",
)
