from django import forms
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_GET, require_POST

from actions.catalog.parameters import refuse_control_characters
from actions.models import Run
from actions.runs import watch
from actions.runs.again import run_again
from actions.runs.feedback import COMMENT_MAX_LENGTH, FeedbackClosed, feedback_open, mark_final_seen, run_feedback
from actions.runs.notify import wants_mail
from actions.runs.pacing import first_poll_ms, is_late, late_at
from actions.runs.selectors import runs_of, runs_page
from actions.runs.states import IN_FLIGHT, REACHED_DEVICE, is_final
from actions.runs.wording import (
    device_status_text,
    engine_explanation,
    late_text,
    results_empty_text,
    status_summary,
    status_title,
)
from actions.views.tickets import ticket_as_json


def _own_run(request, pk) -> Run:
    # Another user's run is a 404, exactly like a run that does not exist. Its ticket (at most one)
    # comes in the same read: the page and the final poll both show it.
    return get_object_or_404(runs_of(request.user).select_related("action", "device", "ticket"), pk=pk)


def engine_results(run: Run) -> list:
    """The run's Engine answers; none to read while it waits or is being sent (they come with its outcome)."""
    return [] if run.status in IN_FLIGHT else list(run.engine_results.all())


@require_GET
def run_detail(request, pk):
    run = _own_run(request, pk)
    mark_final_seen(run)
    results = [(result, engine_explanation(result)) for result in engine_results(run)]
    return render(
        request,
        "actions/run_detail.html",
        {
            "run": run,
            "final": is_final(run.status),
            "summary": status_summary(run),
            "late": late_notice(run),
            "title": status_title(run),
            "results": results,
            "results_empty": results_empty_text(run),
            "again": run_again(run, request.user),
            "reached_device": run.status in REACHED_DEVICE,
            "device_status_text": device_status_text(run),
            "outputs": labelled_outputs(run),
            "feedback_open": feedback_open(run),
            "feedback_form": FeedbackForm(initial={"comment": run.feedback_comment}),
            "first_poll_ms": 0 if is_final(run.status) else first_poll_ms(run),
        },
    )


@require_GET
def run_status(request, pk):
    current = watch.version(pk)  # before the run: a change committed meanwhile only costs a full answer
    run = _own_run(request, pk)
    mark_final_seen(run)
    data = run_as_json(run)
    if is_final(run.status):
        data["run_again"] = run_again(run, request.user).as_dict()
        data["feedback_open"] = feedback_open(run)
        data["ticket"] = ticket_as_json(run)
    response = JsonResponse(data, headers={"Cache-Control": "no-store"})
    if not is_final(run.status):  # the page stops at the end: only a run in flight is looked at again
        tag = watch.etag(pk, request.session.session_key or "", current, fresh_until=late_at(run))
        if tag:
            response["ETag"] = tag  # sent back as If-None-Match: actions/views/watch.py answers it
    return response


def late_notice(run: Run) -> str:
    """The page's words for a run waiting to be sent far longer than usual; "" otherwise.

    The e-mail is promised only to whom the end will be mailed (actions.runs.notify.wants_mail).
    """
    return late_text(mailed=wants_mail(run.user)) if is_late(run) else ""


def labelled_outputs(run: Run) -> dict[str, str]:
    """The action's outputs under the names Nexthink gives them (their ids where it gives none)."""
    labels = run.action.output_labels if run.action else {}
    return {labels.get(key, key): value for key, value in run.outputs.items()}


def run_as_json(run: Run) -> dict:
    def when(value):
        return value.isoformat() if value else None

    def shown(value):  # as the page shows it, so a live update reads the same as a reload
        return date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else "not yet"

    return {
        "id": str(run.pk),
        "status": run.status,
        "status_label": run.get_status_display(),
        "title": status_title(run),
        "final": is_final(run.status),
        "reached_device": run.status in REACHED_DEVICE,
        "summary": status_summary(run),
        "late": late_notice(run),
        "attempts": run.attempts,
        "max_attempts": run.max_attempts,
        "error": {"code": run.error_code, "message": run.error_message} if run.error_code else None,
        "engine_results": [
            {
                "database_uid": r.database_uid,
                "engine_name": r.engine_name,
                "code": r.code,
                "explanation": engine_explanation(r),
                "message": r.message,
            }
            for r in engine_results(run)
        ],
        "results_empty": results_empty_text(run),
        "device_status": run.device_status,
        "device_status_text": device_status_text(run),
        "outputs": labelled_outputs(run),
        "created_at": when(run.created_at),
        "sending_at": when(run.sending_at),
        "finished_at": when(run.finished_at),
        "sending_at_text": shown(run.sending_at),
        "finished_at_text": shown(run.finished_at),
    }


@require_GET
def my_runs(request):
    status = request.GET.get("status", "")
    if status not in Run.Status.values:
        status = ""
    runs = runs_of(request.user)
    if status:
        runs = runs.filter(status=status)
    page = runs_page(
        runs.only(*RUN_LIST_FIELDS), before=request.GET.get("before", "")[:80], after=request.GET.get("after", "")[:80]
    )
    awaiting_feedback = {run.pk for run in page.runs if run.fixed is None and feedback_open(run)}
    return render(
        request,
        "actions/my_runs.html",
        {"page": page, "status": status, "statuses": Run.Status.choices, "awaiting_feedback": awaiting_feedback},
    )


RUN_LIST_FIELDS = (
    "id",
    "action_name",
    "device_name",
    "device_uid",
    "status",
    "created_at",
    "finished_at",
    "user",
    "fixed",
)


class FeedbackForm(forms.Form):
    fixed = forms.TypedChoiceField(
        choices=[("yes", "Yes"), ("no", "No")],
        coerce=lambda value: value == "yes",
        error_messages={"required": "Answer yes or no.", "invalid_choice": "Answer yes or no."},
    )
    comment = forms.CharField(
        label="Anything to add?",
        required=False,
        max_length=COMMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[refuse_control_characters],
    )


@require_POST
def run_feedback_view(request, pk):
    run = _own_run(request, pk)
    form = FeedbackForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(run.get_absolute_url() + "#feedback")
    try:
        run_feedback(run=run, fixed=form.cleaned_data["fixed"], comment=form.cleaned_data["comment"])
    except FeedbackClosed:
        messages.error(request, "This run can no longer be answered.")
        return redirect(run.get_absolute_url())
    if form.cleaned_data["fixed"]:
        messages.success(request, "Thank you: glad it is fixed.")
    else:
        messages.info(request, "Thank you for telling us. If you still need help, ask IT below.")
    return redirect(run.get_absolute_url() + "#feedback")
