"""/api/v1/wallets/: prepaid credits. In payments because a top-up is an invoice that
is collected; granting, terminating and reading are the wallets app's."""

from decimal import Decimal

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from billing.invoicing.top_ups import top_up_invoice_create
from billing.payments.api.serializers import InvoiceSerializer
from billing.wallets import services
from billing.wallets.models import Wallet, WalletTransaction
from core.schema import codes
from core.validators import validate_currency
from core.views import ApiViewSet, not_found
from customers.models import Customer

MAX_CREDITS = Decimal(10) ** 12


class WalletSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="external_id", read_only=True)
    rate_amount = serializers.DecimalField(
        max_digits=20, decimal_places=6, coerce_to_string=True, read_only=True
    )
    balance_credits = serializers.SerializerMethodField()
    top_up_threshold_credits = serializers.DecimalField(
        max_digits=30, decimal_places=6, coerce_to_string=True, read_only=True, allow_null=True
    )
    top_up_paid_credits = serializers.DecimalField(
        max_digits=30, decimal_places=6, coerce_to_string=True, read_only=True, allow_null=True
    )
    top_up_granted_credits = serializers.DecimalField(
        max_digits=30, decimal_places=6, coerce_to_string=True, read_only=True, allow_null=True
    )

    class Meta:
        model = Wallet
        fields = [
            "id",
            "customer",
            "currency",
            "name",
            "rate_amount",
            "status",
            "expiration_at",
            "balance_cents",
            "balance_credits",
            "top_up_threshold_credits",
            "top_up_paid_credits",
            "top_up_granted_credits",
            "created_at",
            "terminated_at",
        ]
        read_only_fields = fields

    def get_balance_credits(self, wallet: Wallet) -> str:
        return str(services.credits_of(wallet, wallet.balance_cents))


class TransactionSerializer(serializers.ModelSerializer):
    credits = serializers.DecimalField(max_digits=38, decimal_places=6, coerce_to_string=True)

    class Meta:
        model = WalletTransaction
        fields = ["id", "kind", "amount_cents", "credits", "invoice", "note", "created_at"]
        read_only_fields = fields


def _credits(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=30,
        decimal_places=6,
        min_value=Decimal("0.000001"),
        max_value=MAX_CREDITS,
        **kwargs,
    )


class CreateWalletInput(serializers.Serializer):
    customer = serializers.CharField(max_length=255, help_text="The customer's external_id.")
    currency = serializers.CharField(max_length=3, validators=[validate_currency])
    name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    rate_amount = serializers.DecimalField(
        required=False,
        max_digits=20,
        decimal_places=6,
        min_value=Decimal("0.000001"),
        max_value=Decimal(10) ** 9,
        help_text="What one credit is worth, in the currency (default 1).",
    )
    granted_credits = _credits(required=False, help_text="Free credits to start with.")
    expiration_at = serializers.DateTimeField(required=False)
    top_up_threshold_credits = serializers.DecimalField(
        required=False,
        max_digits=30,
        decimal_places=6,
        min_value=Decimal(0),
        max_value=MAX_CREDITS,
        help_text="Automatic top-up: when an invoice leaves the balance at or below this many "
        "credits, buy `top_up_paid_credits` (a top-up invoice charged to the card) and grant "
        "`top_up_granted_credits`.",
    )
    top_up_paid_credits = _credits(required=False)
    top_up_granted_credits = _credits(required=False)


class CreditsInput(serializers.Serializer):
    credits = _credits()


class WalletFilter(filters.FilterSet):
    customer = filters.CharFilter(field_name="customer__external_id")
    currency = filters.CharFilter()
    status = filters.ChoiceFilter(choices=Wallet.Status.choices)

    class Meta:
        model = Wallet
        fields: list[str] = []


@extend_schema(tags=["Wallets"])
@extend_schema_view(
    list=extend_schema(
        operation_id="ListWallets",
        summary="List wallets",
        description="Wallets of prepaid credits, oldest first; filter by customer, "
        "currency and status.",
    ),
    retrieve=extend_schema(
        operation_id="GetWallet",
        summary="Get a wallet",
        description="The wallet with its balance, in minor units and in credits.",
    ),
)
class WalletViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = WalletSerializer
    queryset = Wallet.objects.select_related("customer")
    filterset_class = WalletFilter

    @extend_schema(
        operation_id="CreateWallet",
        summary="Create a wallet",
        description="A wallet of prepaid credits for a customer, in its currency. Its "
        "credits are taken off the customer's invoices at finalization, before the card "
        "is charged (oldest wallet first).",
        request=CreateWalletInput,
        responses={
            201: WalletSerializer,
            404: codes(not_found="No such customer."),
            422: codes(
                currency_mismatch="Not the customer's currency.",
                invalid_top_up_rule="A top-up threshold without credits to add.",
            ),
        },
    )
    def create(self, request):
        body = CreateWalletInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        external_id = data.pop("customer")
        customer = Customer.objects.filter(external_id=external_id).first()
        if customer is None:
            raise not_found(Customer, "external_id", external_id)
        wallet = services.wallet_create(customer=customer, **data)
        return Response(WalletSerializer(wallet).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="GrantCredits",
        summary="Grant free credits",
        description="Adds free credits to the wallet (a ledger entry of kind `grant`).",
        request=CreditsInput,
        responses={
            200: WalletSerializer,
            409: codes(wallet_terminated="The wallet is terminated."),
            422: codes(invalid_credits="Worth less than one minor unit."),
        },
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def grant(self, request, pk=None):
        body = CreditsInput(data=request.data)
        body.is_valid(raise_exception=True)
        wallet = self.get_object()
        services.wallet_grant(wallet=wallet, credits=body.validated_data["credits"])
        return Response(WalletSerializer(Wallet.objects.get(pk=wallet.pk)).data)

    @extend_schema(
        operation_id="TopUpWallet",
        summary="Buy credits",
        description="Issues an invoice for the credits (`invoice_type: credit`), collected "
        "like any invoice; once it is paid, the credits reach the wallet, once.",
        request=CreditsInput,
        responses={
            201: InvoiceSerializer,
            409: codes(wallet_terminated="The wallet is terminated."),
            422: codes(invalid_credits="Worth less than one minor unit."),
        },
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def top_up(self, request, pk=None):
        body = CreditsInput(data=request.data)
        body.is_valid(raise_exception=True)
        invoice = top_up_invoice_create(
            wallet=self.get_object(), credits=body.validated_data["credits"]
        )
        return Response(InvoiceSerializer(invoice).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="TerminateWallet",
        summary="Terminate a wallet",
        description="No credits go in or out any more; what is left expires.",
        request=None,
        responses={200: WalletSerializer, 409: codes(wallet_terminated="Terminated already.")},
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def terminate(self, request, pk=None):
        return Response(WalletSerializer(services.wallet_terminate(wallet=self.get_object())).data)

    @extend_schema(
        operation_id="ListWalletTransactions",
        summary="List a wallet's ledger",
        description="Every movement of the wallet, newest first: grants, paid purchases, "
        "consumption by invoices, expiry. The balance is their sum.",
        responses={200: TransactionSerializer(many=True)},
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def transactions(self, request, pk=None):
        page = self.paginate_queryset(self.get_object().transactions.all())
        return self.get_paginated_response(TransactionSerializer(page, many=True).data)


class CustomerWalletView(ApiViewSet):
    """GET /api/v1/customers/{external_id}/wallet/."""

    @extend_schema(
        operation_id="GetCustomerWallet",
        tags=["Wallets"],
        summary="Get a customer's prepaid credits",
        description="The customer's active wallets and their balance in the customer's "
        "currency, in minor units.",
        responses={
            200: inline_serializer(
                "CustomerWallet",
                {
                    "customer": serializers.CharField(),
                    "currency": serializers.CharField(),
                    "balance_cents": serializers.IntegerField(),
                    "wallets": WalletSerializer(many=True),
                },
            )
        },
    )
    def retrieve(self, request, external_id=None):
        customer = Customer.objects.filter(external_id=external_id).first()
        if customer is None:
            raise not_found(Customer, "external_id", external_id)
        active = Wallet.objects.filter(customer=customer, status=Wallet.Status.ACTIVE)
        return Response(
            {
                "customer": customer.external_id,
                "currency": customer.currency,
                "balance_cents": services.balance(
                    customer_id=customer.pk, currency=customer.currency
                ),
                "wallets": WalletSerializer(active, many=True).data,
            }
        )
