"""Long operations staff start from the admin, run by a worker, with a progress line: the
billing run ("Run billing now" on the dashboard). The page refreshes itself every two
seconds until the job finishes, reading core/progress.py's JobProgress."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.progress import JobProgress
from core.publish import publish_task

BILLING_RUN_TASK = "billing.invoicing.tasks.billing_run"
RUN_PERMISSION = "invoicing.change_invoice"  # the operator's and finance's: finalizing


@require_POST
def billing_run_start(request):
    if not request.user.has_perm(RUN_PERMISSION):
        raise PermissionDenied
    job_id, progress = JobProgress.create("Billing run")
    if not publish_task(BILLING_RUN_TASK, args=[job_id], force=True):
        progress.finish("The broker is not reachable: nothing was started.", failed=True)
        messages.error(request, "The billing run could not be queued (the broker is down).")
    return HttpResponseRedirect(reverse("billing_run_progress", args=[job_id]))


def billing_run_progress(request, job_id: str):
    if not request.user.has_perm(RUN_PERMISSION):
        raise PermissionDenied
    state = JobProgress(job_id).read()
    if state is None:
        raise Http404("No such job (its progress is kept a day).")
    return TemplateResponse(
        request,
        "backoffice/job_progress.html",
        {
            **admin.site.each_context(request),
            "title": state.label,
            "job": state,
            "live": state.state in ("queued", "running"),
        },
    )
