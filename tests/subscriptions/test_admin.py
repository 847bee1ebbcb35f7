import pytest

from subscriptions.models import Plan
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_staff_run_the_lifecycle_from_the_admin(admin_client, catalog):
    sub = SubscriptionFactory(external_id="sub-1", customer=catalog.acme, plan=catalog.pro)
    listing = admin_client.get("/admin/subscriptions/subscription/?status__exact=active")
    assert listing.status_code == 200 and "sub-1" in listing.content.decode()
    assert (
        admin_client.get(f"/admin/subscriptions/subscription/{sub.pk}/change/").status_code == 200
    )

    def act(action, **extra):
        return admin_client.post(
            "/admin/subscriptions/subscription/",
            {"action": action, "_selected_action": [str(sub.pk)], **extra},
            follow=True,
        ).content.decode()

    assert "cancels at period end" in act("cancel_at_period_end_action")
    assert "not done" in act("cancel_at_period_end_action")  # refused, and explained
    assert "reactivated" in act("reactivate")
    form = act("change_plan")
    assert "Change plan" in form
    business = Plan.objects.get(code="business")
    assert "plan changed" in act("change_plan", apply="1", plan=str(business.pk))
    sub.refresh_from_db()
    assert sub.plan == business
    assert "terminated" in act("terminate_now")
    assert "not done" in act("terminate_now")


def test_plan_admin_validates_charges_like_the_api(admin_client, catalog):
    assert admin_client.get("/admin/subscriptions/plan/").status_code == 200
    plan = Plan.objects.get(code="starter")
    page = admin_client.get(f"/admin/subscriptions/plan/{plan.pk}/change/")
    assert page.status_code == 200
    from django.forms import modelform_factory

    from subscriptions.admin import ChargeInline
    from subscriptions.models import BillableMetric, Charge

    # The inline's form: a ModelForm of Charge, whose clean() checks the properties.
    form = modelform_factory(Charge, fields=ChargeInline.fields[:3])(
        data={
            "metric": BillableMetric.objects.get(code="tokens").pk,
            "charge_model": "package",
            "properties": '{"amount": "1", "package_size": 0}',
        }
    )
    assert not form.is_valid() and "properties" in form.errors
