from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from billing.sync.api import SyncStatesMixin
from core.schema import codes
from core.views import ApiViewSet, ServiceWriteMixin, not_found
from customers import selectors, services
from customers.api.serializers import (
    CUSTOMER_REMOTE_IDS,
    CustomerSerializer,
    PaymentMethodAddSerializer,
    PaymentMethodSerializer,
    SetupIntentSerializer,
)
from customers.models import Customer, PaymentMethod

PM_ID = r"(?P<payment_method_id>[0-9a-f-]{36})"

PAYMENT_METHODS = ["Payment methods"]
# What every card operation may answer: it calls Stripe while the request waits.
STRIPE_CONFLICTS = {
    "stripe_disabled": "This service has no Stripe account configured.",
    "stripe_customer_pending": "The customer is not in Stripe yet (it is created within "
    "seconds of the customer): retry shortly.",
}
STRIPE_REFUSED = {
    "resource_missing": "Stripe no longer has the card or the customer.",
    "(Stripe's code)": "Any other refusal by Stripe, with Stripe's own error code.",
}
STRIPE_UNAVAILABLE = {
    "provider_unavailable": "Stripe did not answer in time or failed.",
    "busy": "Another change to this customer's cards is still running.",
}


class CustomerFilter(filters.FilterSet):
    search = filters.CharFilter(method="noop", help_text="Part of external_id, name or email.")
    email = filters.CharFilter(method="noop", help_text="The email, in any case.")
    country = filters.CharFilter(method="noop", help_text="ISO 3166-1 alpha-2, e.g. `DE`.")
    created_after = filters.IsoDateTimeFilter(method="noop", help_text="Created after this time.")

    class Meta:
        model = Customer
        fields: list[str] = []

    def noop(self, queryset, name, value):
        # Validation and the schema come from the FilterSet; the query is the selector's.
        return queryset

    def filter_queryset(self, queryset):
        return selectors.customer_list(**{k: v for k, v in self.form.cleaned_data.items() if v})


@extend_schema(tags=["Customers"])
@extend_schema_view(
    list=extend_schema(
        operation_id="ListCustomers",
        summary="List customers",
        description="Customers, newest first, cursor paginated. `search` matches part of "
        "the external_id, name or email; `email` and `country` match exactly; "
        "`created_after` bounds the creation time.",
    ),
    create=extend_schema(
        operation_id="CreateCustomer",
        summary="Create a customer",
        description="Creates a customer, addressed from then on by the `external_id` you "
        "give (your own id for them; it cannot change). The customer is then created in "
        "Stripe and, when Lago is configured, in Lago, in the background within seconds: "
        "`sync` shows how far that got, and `stripe_customer_id`/`lago_id` are filled in "
        "once it has. `currency` can change only until the customer has a subscription "
        "or an invoice.",
        responses={
            201: CustomerSerializer,
            409: codes(customer_exists="A customer with this `external_id` exists."),
        },
    ),
    retrieve=extend_schema(
        operation_id="GetCustomer",
        summary="Get a customer",
        description="The customer with this `external_id`, with its provider ids and `sync` state.",
    ),
    partial_update=extend_schema(
        operation_id="UpdateCustomer",
        summary="Update a customer",
        description='Changes the fields given and leaves the others; `null` or `""` '
        "clears a field. `external_id` cannot change. The change reaches Stripe and Lago "
        "in the background (see `sync`).",
        responses={
            200: CustomerSerializer,
            409: codes(
                currency_locked="The customer has subscriptions or invoices, which are "
                "priced in its currency: create a new customer for another currency "
                "(`attr` is `currency`)."
            ),
        },
    ),
)
class CustomerViewSet(
    SyncStatesMixin,
    ServiceWriteMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    ApiViewSet,
):
    serializer_class = CustomerSerializer
    queryset = Customer.objects.all()
    lookup_field = "external_id"
    lookup_value_regex = "[^/]+"
    filterset_class = CustomerFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    create_service = staticmethod(services.customer_create)
    update_service = staticmethod(services.customer_update)
    update_kwarg = "customer"
    sync_remote_ids = CUSTOMER_REMOTE_IDS

    # --- Payment methods (card data never reaches us: Stripe.js collects it) ---------
    def _payment_method(self, payment_method_id: str) -> PaymentMethod:
        customer = self.get_object()
        method = PaymentMethod.objects.filter(pk=payment_method_id, customer=customer).first()
        if method is None:
            raise not_found(
                PaymentMethod, "id", payment_method_id, of=f"customer '{customer.external_id}'"
            )
        return method

    @extend_schema(
        operation_id="CreateSetupIntent",
        tags=PAYMENT_METHODS,
        summary="Start collecting a card",
        description="Creates a Stripe SetupIntent for the customer and returns its "
        "`client_secret`. Hand it to Stripe.js in your front end to collect the card (card "
        "data never reaches this service), then add the resulting `pm_…` with "
        "AddPaymentMethod. Calls Stripe while you wait (a few seconds at most). Each call "
        "makes a new SetupIntent; an `Idempotency-Key` replays the first one.",
        request=None,
        responses={
            201: SetupIntentSerializer,
            409: codes(**STRIPE_CONFLICTS),
            422: codes(**STRIPE_REFUSED),
            503: codes(**STRIPE_UNAVAILABLE),
        },
    )
    @action(detail=True, methods=["post"], url_path="setup_intents")
    def setup_intents(self, request, external_id=None):
        intent = services.setup_intent_create(customer=self.get_object())
        return Response(SetupIntentSerializer(intent).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["get"],
        operation_id="ListPaymentMethods",
        tags=PAYMENT_METHODS,
        summary="List a customer's payment methods",
        description="The customer's cards, newest first, cursor paginated: the active "
        "ones, or with `status=detached` the removed ones (kept for history). At most one "
        "is `is_default`: the one invoices are charged to.",
        parameters=[
            OpenApiParameter(
                "status",
                enum=["active", "detached"],
                description="Which cards to list (default `active`).",
            )
        ],
        responses=PaymentMethodSerializer(many=True),
    )
    @extend_schema(
        methods=["post"],
        operation_id="AddPaymentMethod",
        tags=PAYMENT_METHODS,
        summary="Add a payment method",
        description="Attaches a card collected by Stripe.js (its `pm_…` id) to the "
        "customer in Stripe and stores its brand, last 4 digits, expiry and country (never "
        "the number). With `set_default: true` it becomes the card invoices are charged "
        "to, in Stripe and here. Calls Stripe while you wait; if Stripe refuses or fails, "
        "nothing is stored. Adding a card the customer already has returns it again.",
        request=PaymentMethodAddSerializer,
        responses={
            201: PaymentMethodSerializer,
            402: codes(
                card_declined="The card was declined when attached; `detail` is Stripe's "
                "sentence for the card holder.",
                **{
                    "(Stripe's card code)": "Another card refusal (`expired_card`, "
                    "`incorrect_cvc`, …)."
                },
            ),
            409: codes(
                payment_method_belongs_to_other_customer="The card is attached to another "
                "customer.",
                **STRIPE_CONFLICTS,
            ),
            422: codes(
                **{
                    **STRIPE_REFUSED,
                    "resource_missing": "Stripe has no payment method with this id (`attr` "
                    "is `stripe_payment_method_id`; `detail` names the id).",
                }
            ),
            503: codes(**STRIPE_UNAVAILABLE),
        },
    )
    @action(detail=True, methods=["get", "post"], url_path="payment_methods", filterset_class=None)
    def payment_methods(self, request, external_id=None):
        customer = self.get_object()
        if request.method == "POST":
            body = PaymentMethodAddSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            method = services.payment_method_add(customer=customer, **body.validated_data)
            return Response(PaymentMethodSerializer(method).data, status=status.HTTP_201_CREATED)
        wanted = request.query_params.get("status", PaymentMethod.Status.ACTIVE)
        methods = customer.payment_methods.filter(status=wanted)
        page = self.paginator.paginate_queryset(methods, request, view=self)
        return self.paginator.get_paginated_response(PaymentMethodSerializer(page, many=True).data)

    @extend_schema(
        operation_id="RemovePaymentMethod",
        tags=PAYMENT_METHODS,
        summary="Remove a payment method",
        description="Detaches the card in Stripe, then marks it `detached` here (it stays "
        "listed under `status=detached`). Removing the default card leaves the customer "
        "with no default: choose another with SetDefaultPaymentMethod. Removing the last "
        "card while invoices are still owed is allowed, but the answer carries "
        "`Billing-Warning`. Removing a removed card changes nothing. Calls Stripe while "
        "you wait.",
        request=None,
        parameters=[
            OpenApiParameter(
                "Billing-Warning",
                str,
                OpenApiParameter.HEADER,
                description="Set when the customer is left with no card while invoices "
                "are owed: `last_payment_method_removed; open_invoices=N`.",
                response=[204],
            )
        ],
        responses={
            204: None,
            409: codes(**STRIPE_CONFLICTS),
            422: codes(**STRIPE_REFUSED),
            503: codes(**STRIPE_UNAVAILABLE),
        },
    )
    @action(detail=True, methods=["delete"], url_path=f"payment_methods/{PM_ID}")
    def remove_payment_method(self, request, external_id=None, payment_method_id=None):
        method = self._payment_method(payment_method_id)
        removed = services.payment_method_remove(customer=method.customer, payment_method=method)
        response = Response(status=status.HTTP_204_NO_CONTENT)
        owed = removed.open_invoices_left_without_card
        if owed:
            # Allowed, but the caller is told: these invoices cannot be collected now.
            response["Billing-Warning"] = f"last_payment_method_removed; open_invoices={owed}"
        return response

    @extend_schema(
        operation_id="SetDefaultPaymentMethod",
        tags=PAYMENT_METHODS,
        summary="Make a payment method the default",
        description="Makes this card the one the customer's invoices are charged to, in "
        "Stripe and here; the previous default is no longer default. Invoices waiting for "
        "a card are collected from it. Calls Stripe while you wait.",
        request=None,
        responses={
            200: PaymentMethodSerializer,
            409: codes(
                payment_method_detached="The card was removed: it cannot be the default.",
                **STRIPE_CONFLICTS,
            ),
            422: codes(**STRIPE_REFUSED),
            503: codes(**STRIPE_UNAVAILABLE),
        },
    )
    @action(detail=True, methods=["post"], url_path=f"payment_methods/{PM_ID}/set_default")
    def set_default_payment_method(self, request, external_id=None, payment_method_id=None):
        method = self._payment_method(payment_method_id)
        method = services.payment_method_set_default(
            customer=method.customer, payment_method=method
        )
        return Response(PaymentMethodSerializer(method).data)
