"""The approvers' page: the requests waiting for them, approve or deny each with a comment."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from actions.runs.approvals import (
    COMMENT_MAX_LENGTH,
    ApprovalRefused,
    approvals_page,
    run_approve,
    run_cancel,
    run_deny,
)
from actions.runs.selectors import runs_of

SHOWN = 50


@require_GET
def approvals(request):
    waiting = approvals_page(request.user, limit=SHOWN)
    return render(request, "actions/approvals.html", {"waiting": waiting, "comment_max_length": COMMENT_MAX_LENGTH})


@require_POST
def approval_decide(request, pk):
    decision = request.POST.get("decision")
    comment = request.POST.get("comment", "")
    try:
        if decision == "approve":
            run = run_approve(run_id=pk, approver=request.user, comment=comment)
            messages.success(
                request,
                gettext("Approved: “%(action)s” for %(employee)s is on its way.")
                % {"action": run.action_name, "employee": run.user.get_username()},
            )
        elif decision == "deny":
            run = run_deny(run_id=pk, approver=request.user, comment=comment)
            messages.success(
                request,
                gettext("Denied: “%(action)s” for %(employee)s will not run.")
                % {"action": run.action_name, "employee": run.user.get_username()},
            )
        else:
            messages.error(request, gettext("Choose Approve or Deny."))
    except ApprovalRefused as refusal:
        messages.warning(request, str(refusal))
    return redirect("approvals")


@require_POST
def run_cancel_view(request, pk):
    run = get_object_or_404(runs_of(request.user), pk=pk)
    if run_cancel(run_id=run.pk, user=request.user):
        messages.success(request, gettext("Request cancelled: nothing was sent."))
    else:
        messages.info(request, gettext("This request was already decided, so it could not be cancelled."))
    return redirect(run.get_absolute_url())
