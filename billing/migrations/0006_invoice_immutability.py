"""Finalized invoices are immutable in the database, not only in the API.

An issued invoice is a legal document: once it leaves `draft`, only its payment state, its
collection schedule, its reconciliation flag and the move to `voided` may change. Its
lines can no longer be added, changed or removed, and neither can be deleted.
"""

from django.db import migrations

FROZEN_COLUMNS = [
    "number",
    "issuer",
    "customer_id",
    "subscription_id",
    "period_start",
    "period_end",
    "currency",
    "subtotal_amount_cents",
    "tax_rate",
    "taxes_amount_cents",
    "total_amount_cents",
    "issued_at",
    "due_date",
    "engine",
    "lago_id",
    "lago_number",
    "created_at",
]

CHANGED = " OR ".join(f'OLD."{c}" IS DISTINCT FROM NEW."{c}"' for c in FROZEN_COLUMNS)

FORWARD = f"""
CREATE FUNCTION billing_invoice_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'invoice % is %, it cannot be deleted', OLD.id, OLD.status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'draft' AND ({CHANGED}) THEN
        RAISE EXCEPTION 'invoice % is %, its contents are immutable', OLD.id, OLD.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.status = 'voided' AND NEW.status <> 'voided' THEN
        RAISE EXCEPTION 'invoice % is voided for good', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.status = 'finalized' AND NEW.status = 'draft' THEN
        RAISE EXCEPTION 'invoice % is finalized, it cannot return to draft', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_invoice_immutable
    BEFORE UPDATE OR DELETE ON billing_invoice
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_immutable();

CREATE FUNCTION billing_invoiceline_immutable() RETURNS trigger AS $$
DECLARE
    parent uuid;
    parent_status text;
BEGIN
    -- Both parents of an UPDATE: a line may not be moved off an issued invoice either.
    FOREACH parent IN ARRAY ARRAY[
        CASE WHEN TG_OP <> 'INSERT' THEN OLD.invoice_id END,
        CASE WHEN TG_OP <> 'DELETE' THEN NEW.invoice_id END
    ] LOOP
        CONTINUE WHEN parent IS NULL;
        SELECT status INTO parent_status FROM billing_invoice WHERE id = parent;
        -- A missing parent is a cascade from a draft's deletion, already checked there.
        IF parent_status IS NOT NULL AND parent_status <> 'draft' THEN
            RAISE EXCEPTION 'invoice % is %, its lines are immutable', parent, parent_status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END LOOP;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_invoiceline_immutable
    BEFORE INSERT OR UPDATE OR DELETE ON billing_invoiceline
    FOR EACH ROW EXECUTE FUNCTION billing_invoiceline_immutable();
"""

REVERSE = """
DROP TRIGGER IF EXISTS billing_invoiceline_immutable ON billing_invoiceline;
DROP FUNCTION IF EXISTS billing_invoiceline_immutable();
DROP TRIGGER IF EXISTS billing_invoice_immutable ON billing_invoice;
DROP FUNCTION IF EXISTS billing_invoice_immutable();
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0005_invoices")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
