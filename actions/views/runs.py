from django import forms
from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from actions.catalog.parameters import MultiLineField, PlainTextarea, never_cut, refuse_control_characters
from actions.models import Run
from actions.runs import watch
from actions.runs.again import run_again
from actions.runs.feedback import COMMENT_MAX_LENGTH, FeedbackClosed, feedback_open, mark_final_seen, run_feedback
from actions.runs.notify import wants_mail
from actions.runs.pacing import first_poll_ms, is_late, late_at
from actions.runs.selectors import engine_results, filter_statuses, labelled_outputs, own_run, runs_of, runs_page
from actions.runs.states import REACHED_DEVICE, is_final
from actions.runs.wording import (
    chosen_values,
    engine_explanation,
    feedback_hint,
    late_text,
    results_empty_text,
    run_times,
    status_label,
    status_summary,
    status_title,
    technical_times,
)
from actions.uids import run_reference
from actions.views.tickets import ticket_as_json


def _own_run(request, pk) -> Run:
    # Another user's run is a 404, exactly like a run that does not exist. Its ticket (at most one)
    # comes in the same read: the page and the final poll both show it.
    run = own_run(request.user, pk)
    if run is None:
        raise Http404("No such run.")
    return run


@require_GET
def run_detail(request, pk):
    run = _own_run(request, pk)
    mark_final_seen(run)
    return render_run_page(request, run, FeedbackForm(initial={"comment": run.feedback_comment}))


def render_run_page(request, run: Run, feedback_form: "FeedbackForm", status: int = 200):
    results = [(result, engine_explanation(result)) for result in engine_results(run)]
    return render(
        request,
        "actions/run_detail.html",
        {
            "run": run,
            "status_label": status_label(run.status),
            "reference": run_reference(run.pk),
            "times": run_times(run),
            "technical_times": technical_times(run),
            "chosen": chosen_values(run),
            "feedback_hint": feedback_hint(run),
            "final": is_final(run.status),
            "summary": status_summary(run),
            "late": late_notice(run),
            "title": status_title(run),
            "results": results,
            "results_empty": results_empty_text(run),
            "again": run_again(run, request.user),
            "reached_device": run.status in REACHED_DEVICE,
            "outputs": labelled_outputs(run),
            "feedback_open": feedback_open(run),
            "feedback_form": feedback_form,
            "first_poll_ms": 0 if is_final(run.status) else first_poll_ms(run),
            "js_words": js_words(),
        },
        status=status,
    )


def js_words() -> dict[str, str]:
    """What static/js/run-status.js writes itself, in the page's language (json_script on the page)."""
    return {
        "engine_server": gettext("Nexthink server"),
        "engine_answer": gettext("Answer"),
        "engine_meaning": gettext("What it means"),
        "empty": gettext("(empty)"),
        "none": gettext("none"),
        "attempts": gettext("%(attempts)s of %(max_attempts)s"),
        "ticket_number": gettext(
            "The service desk has a ticket about this run: %(number)s. Quote this number if you contact them."
        ),
        "ticket_no_number": gettext("The service desk has a ticket about this run."),
        "updates_stopped": gettext("Updates stopped: reload the page (you may need to sign in again)."),
    }


@require_GET
def run_status(request, pk):
    current = watch.version(pk)  # before the run: a change committed meanwhile only costs a full answer
    run = _own_run(request, pk)
    mark_final_seen(run)
    data = run_as_json(run)
    if is_final(run.status):
        data["run_again"] = run_again(run, request.user).as_dict()
        data["feedback_open"] = feedback_open(run)
        data["feedback_hint"] = feedback_hint(run)
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


def run_as_json(run: Run) -> dict:
    def when(value):
        return value.isoformat() if value else None

    return {
        "id": str(run.pk),
        "status": run.status,
        "status_label": status_label(run.status),
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
        "device_status_details": run.device_status_details,
        "outputs": labelled_outputs(run),
        "created_at": when(run.created_at),
        "sending_at": when(run.sending_at),
        "finished_at": when(run.finished_at),
        # As the page shows them (time zone named), so a live update reads the same as a reload.
        "times": run_times(run),
        "technical_times": technical_times(run),
        "error_code": run.error_code,
    }


@require_GET
def my_runs(request):
    status = request.GET.get("status", "")
    if status not in Run.Status.values:
        status = ""
    runs = runs_of(request.user)
    if status:
        runs = runs.filter(status=status)
    # Each run with its ticket, if one was asked for: one query, one join.
    runs = runs.select_related("ticket").only(*RUN_LIST_FIELDS, "ticket__id", "ticket__state", "ticket__number")
    page = runs_page(runs, before=request.GET.get("before", "")[:80], after=request.GET.get("after", "")[:80])
    awaiting_feedback = {run.pk for run in page.runs if run.fixed is None and feedback_open(run)}
    statuses = [(value, status_label(value)) for value in filter_statuses()]
    return render(
        request,
        "actions/my_runs.html",
        {"page": page, "status": status, "statuses": statuses, "awaiting_feedback": awaiting_feedback},
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
        choices=[("yes", gettext_lazy("Yes")), ("no", gettext_lazy("No"))],
        coerce=lambda value: value == "yes",
        error_messages={
            "required": gettext_lazy("Answer yes or no."),
            "invalid_choice": gettext_lazy("Answer yes or no."),
        },
    )
    comment = never_cut(
        MultiLineField(
            label=gettext_lazy("Anything to add?"),
            required=False,
            max_length=COMMENT_MAX_LENGTH,
            widget=PlainTextarea(attrs={"rows": 3}),
            validators=[refuse_control_characters],
        )
    )


@require_POST
def run_feedback_view(request, pk):
    run = _own_run(request, pk)
    form = FeedbackForm(request.POST)
    if not form.is_valid():
        # The page again, with what was typed kept in the box and the error on its field (the error
        # summary takes the focus and links to the field): nothing the employee wrote is lost.
        return render_run_page(request, run, form, status=400)
    try:
        run_feedback(run=run, fixed=form.cleaned_data["fixed"], comment=form.cleaned_data["comment"])
    except FeedbackClosed:
        messages.error(request, gettext("This run can no longer be answered."))
        return redirect(run.get_absolute_url())
    if form.cleaned_data["fixed"]:
        messages.success(request, gettext("Thank you: glad it is fixed."))
    else:
        messages.info(request, gettext("Thank you for telling us. If you still need help, ask IT below."))
    return redirect(run.get_absolute_url() + "#feedback")
