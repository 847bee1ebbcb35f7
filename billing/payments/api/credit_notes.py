"""The credit note endpoints: issue (and estimate) a credit note on an issued invoice,
list, get, void. In payments because a credit note's refund goes back to the card."""

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from billing.invoicing import credit_notes
from billing.invoicing.models import CreditNote, CreditNoteItem, Invoice
from core.limits import MAX_FEE_CENTS
from core.schema import codes
from core.views import ApiViewSet, not_found


class CreditNoteItemSerializer(serializers.ModelSerializer):
    line_position = serializers.IntegerField(source="invoice_line.position", read_only=True)
    description = serializers.CharField(source="invoice_line.description", read_only=True)

    class Meta:
        model = CreditNoteItem
        fields = ["line_position", "description", "amount_cents"]
        read_only_fields = fields


class CreditNoteSerializer(serializers.ModelSerializer):
    invoice = serializers.PrimaryKeyRelatedField(read_only=True)
    invoice_number = serializers.CharField(source="invoice.number", read_only=True)
    customer = serializers.SlugRelatedField(slug_field="external_id", read_only=True)
    items = CreditNoteItemSerializer(many=True, read_only=True)

    class Meta:
        model = CreditNote
        fields = [
            "id",
            "number",
            "invoice",
            "invoice_number",
            "customer",
            "currency",
            "reason",
            "description",
            "status",
            "subtotal_amount_cents",
            "coupons_amount_cents",
            "taxes_amount_cents",
            "total_amount_cents",
            "refund_amount_cents",
            "credit_amount_cents",
            "offset_amount_cents",
            "balance_amount_cents",
            "refund_status",
            "needs_review",
            "issued_at",
            "voided_at",
            "items",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ItemInput(serializers.Serializer):
    line_position = serializers.IntegerField(min_value=1, max_value=1_000_000)
    amount_cents = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_FEE_CENTS, help_text="Before tax."
    )
    units = serializers.DecimalField(
        required=False, max_digits=38, decimal_places=12, min_value=0, coerce_to_string=True
    )

    def validate(self, attrs):
        if ("amount_cents" in attrs) == ("units" in attrs):
            raise serializers.ValidationError(
                {"amount_cents": "Give amount_cents or units, not both."}
            )
        return attrs


class EstimateInput(serializers.Serializer):
    invoice = serializers.UUIDField(help_text="The issued invoice to credit.")
    items = ItemInput(
        many=True,
        required=False,
        max_length=1000,
        help_text="The lines to credit, by amount or by units. Leave out to credit "
        "everything still creditable on the invoice.",
    )


class CreateInput(EstimateInput):
    reason = serializers.ChoiceField(choices=CreditNote.Reason.choices)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    refund_amount_cents = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_FEE_CENTS
    )
    credit_amount_cents = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_FEE_CENTS
    )
    offset_amount_cents = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_FEE_CENTS
    )


class EstimateSerializer(serializers.Serializer):
    coupons_amount_cents = serializers.IntegerField()
    subtotal_amount_cents = serializers.IntegerField()
    taxes_amount_cents = serializers.IntegerField()
    total_amount_cents = serializers.IntegerField()
    refundable_amount_cents = serializers.IntegerField()
    offsettable_amount_cents = serializers.IntegerField()


class CreditNoteFilter(filters.FilterSet):
    invoice = filters.UUIDFilter(field_name="invoice_id")
    customer = filters.CharFilter(
        field_name="customer__external_id", help_text="The customer's external_id."
    )
    reason = filters.ChoiceFilter(choices=CreditNote.Reason.choices)
    status = filters.ChoiceFilter(choices=CreditNote.Status.choices)

    class Meta:
        model = CreditNote
        fields: list[str] = []


def _invoice(invoice_id) -> Invoice:
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None:
        raise not_found(Invoice, "id", invoice_id)
    return invoice


def _items(invoice: Invoice, data: dict) -> list[credit_notes.ItemRequest] | None:
    if "items" not in data:
        return None
    by_position = dict(invoice.lines.values_list("position", "pk"))
    items = []
    for item in data["items"]:
        line_id = by_position.get(item["line_position"])
        if line_id is None:
            raise serializers.ValidationError(
                {"items": f"Invoice {invoice} has no line {item['line_position']}."}
            )
        items.append(
            credit_notes.ItemRequest(
                line_id=line_id, amount_cents=item.get("amount_cents"), units=item.get("units")
            )
        )
    return items


REFUSALS = {
    409: codes(
        invoice_not_finalized="Only an issued invoice takes a credit note.",
        payment_in_progress="An offset while a payment of the invoice is in flight.",
    ),
    422: codes(
        exceeds_creditable="An item is more than what is left to credit on its line.",
        nothing_to_credit="Nothing is left to credit on the invoice.",
        invalid_item="An item's units are out of its line's range.",
        invalid_split="Refund, credit and offset do not add up to the total.",
        refund_exceeds_paid="The refund is more than was paid and not yet refunded.",
        offset_exceeds_due="The offset is more than the invoice still owes.",
        no_card_payment="The invoice was not paid by card through Stripe: nothing to refund.",
        lago_fees_unknown="A Lago invoice mirrored without its fee ids: credit it in Lago.",
    ),
    404: codes(not_found="No invoice with that id."),
}


@extend_schema(tags=["Credit notes"])
@extend_schema_view(
    list=extend_schema(
        operation_id="ListCreditNotes",
        summary="List credit notes",
        description="Credit notes, newest first, cursor paginated; filter by invoice, "
        "customer, reason and status.",
    ),
    retrieve=extend_schema(
        operation_id="GetCreditNote",
        summary="Get a credit note",
        description="The credit note with its items per invoice line, its totals and "
        "where the money went (refund, credit, offset).",
    ),
)
class CreditNoteViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = CreditNote.objects.select_related("invoice", "customer").prefetch_related(
        "items__invoice_line"
    )
    serializer_class = CreditNoteSerializer
    filterset_class = CreditNoteFilter

    @extend_schema(
        operation_id="CreateCreditNote",
        summary="Issue a credit note",
        description="Credits an issued invoice, whole or per line (by amount before tax, "
        "or by units), with Lago's reasons. Coupons and tax are credited in proportion. "
        "The total goes where you say: `refund_amount_cents` back to the card (through "
        "Stripe, in the background), `credit_amount_cents` to the customer's credit "
        "balance (taken off their next invoices), `offset_amount_cents` off what the "
        "invoice still owes; the three add up to the total. Say none, and the offset "
        "takes what is owed, the refund what was paid, and the credit the rest.",
        request=CreateInput,
        responses={201: CreditNoteSerializer, **REFUSALS},
    )
    def create(self, request):
        body = CreateInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        invoice = _invoice(data["invoice"])
        note = credit_notes.credit_note_create(
            invoice=invoice,
            reason=data["reason"],
            items=_items(invoice, data),
            refund_amount_cents=data.get("refund_amount_cents"),
            credit_amount_cents=data.get("credit_amount_cents"),
            offset_amount_cents=data.get("offset_amount_cents"),
            description=data.get("description", ""),
            created_by=f"api:{getattr(request.auth, 'name', '')}",
        )
        fresh = self.get_queryset().get(pk=note.pk)
        return Response(CreditNoteSerializer(fresh).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="EstimateCreditNote",
        summary="Estimate a credit note",
        description="The totals a credit note of these items would have, and how much "
        "may be refunded or offset; nothing is issued.",
        request=EstimateInput,
        responses={200: EstimateSerializer, **REFUSALS},
    )
    @action(detail=False, methods=["post"], filterset_class=None, pagination_class=None)
    def estimate(self, request):
        body = EstimateInput(data=request.data)
        body.is_valid(raise_exception=True)
        invoice = _invoice(body.validated_data["invoice"])
        quote = credit_notes.estimate(invoice=invoice, items=_items(invoice, body.validated_data))
        return Response(EstimateSerializer(quote).data)

    @extend_schema(
        operation_id="VoidCreditNote",
        summary="Void a credit note",
        description="Voids a credit note that refunded nothing and whose credit is "
        "unused: what it credited becomes creditable again.",
        request=None,
        responses={
            200: OpenApiResponse(CreditNoteSerializer, description="Voided."),
            409: codes(
                invalid_transition="Already voided.",
                credit_note_refunded="It refunded money to the card.",
                credit_note_used="Its credit was used on a later invoice.",
                credit_note_settled_invoice="Its offset settled what the invoice owed.",
            ),
        },
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def void(self, request, pk=None):
        note = credit_notes.credit_note_void(credit_note=self.get_object())
        return Response(CreditNoteSerializer(self.get_queryset().get(pk=note.pk)).data)
