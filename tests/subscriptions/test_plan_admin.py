import pytest
from django.forms import modelform_factory

from subscriptions.admin import ChargeInline, FrozenChargeInline
from subscriptions.models import BillableMetric, Charge, Plan
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def _charge_inlines(page):
    return [
        formset.opts
        for formset in page.context["inline_admin_formsets"]
        if isinstance(formset.opts, ChargeInline)
    ]


def test_a_plan_in_use_shows_its_charges_read_only(admin_client, catalog):
    plan = Plan.objects.get(code="pro")
    (editable,) = _charge_inlines(admin_client.get(f"/admin/subscriptions/plan/{plan.pk}/change/"))
    assert type(editable) is ChargeInline

    SubscriptionFactory(external_id="sub-1", customer=catalog.acme, plan=plan)
    page = admin_client.get(f"/admin/subscriptions/plan/{plan.pk}/change/")
    assert page.status_code == 200
    (frozen,) = _charge_inlines(page)
    assert isinstance(frozen, FrozenChargeInline)
    assert set(frozen.readonly_fields) == {
        "metric",
        "charge_model",
        "properties",
        "filters",
        "prorated",
        "lago_id",
    }
    assert not frozen.can_delete and frozen.max_num == 0
    assert 'name="charges-0-properties"' not in page.content.decode()


def test_a_charge_without_a_model_is_refused_by_that_field_alone(catalog):
    # The inline's form: a ModelForm of Charge, whose clean() checks the properties.
    form = modelform_factory(Charge, fields=ChargeInline.fields[:3])(
        data={
            "metric": BillableMetric.objects.get(code="tokens").pk,
            "charge_model": "",
            "properties": '{"amount": "1"}',
        }
    )
    assert not form.is_valid()
    assert "charge_model" in form.errors and "properties" not in form.errors
