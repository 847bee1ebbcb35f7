"""What customers tell the layers above (they subscribe in their AppConfig.ready())."""

from core.events import Event

default_payment_method_set = Event(
    "default_payment_method_set",
    "A customer has a default card again (customer=). Work waiting for one may resume.",
)
open_invoices_count = Event(
    "open_invoices_count",
    "A question (customer=): how many issued invoices does the customer still owe? "
    "Asked when the last card goes; subscribers answer with a count.",
)
currency_in_use = Event(
    "currency_in_use",
    "A question (customer=): does anything priced in the customer's currency (a "
    "subscription, an invoice) exist? Asked before the currency changes; subscribers answer "
    "True or False.",
)
