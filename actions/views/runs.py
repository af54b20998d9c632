from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_GET

from actions.models import Run
from actions.runs.again import run_again
from actions.runs.lifecycle import REACHED_DEVICE
from actions.runs.selectors import runs_of
from actions.runs.wording import engine_explanation, results_empty_text, status_summary, status_title


def _own_run(request, pk) -> Run:
    # Another user's run is a 404, exactly like a run that does not exist.
    return get_object_or_404(
        runs_of(request.user).select_related("action", "device").prefetch_related("engine_results"), pk=pk
    )


@require_GET
def run_detail(request, pk):
    run = _own_run(request, pk)
    results = [(result, engine_explanation(result)) for result in run.engine_results.all()]
    return render(
        request,
        "actions/run_detail.html",
        {
            "run": run,
            "summary": status_summary(run),
            "title": status_title(run),
            "results": results,
            "results_empty": results_empty_text(run),
            "again": run_again(run, request.user),
            "reached_device": run.status in REACHED_DEVICE,
        },
    )


@require_GET
def run_status(request, pk):
    run = _own_run(request, pk)
    data = run_as_json(run)
    if run.is_final:
        data["run_again"] = run_again(run, request.user).as_dict()
    return JsonResponse(data, headers={"Cache-Control": "no-store"})


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
        "final": run.is_final,
        "reached_device": run.status in REACHED_DEVICE,
        "summary": status_summary(run),
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
            for r in run.engine_results.all()
        ],
        "results_empty": results_empty_text(run),
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
    page = Paginator(runs.only(*RUN_LIST_FIELDS), 20).get_page(request.GET.get("page"))
    return render(
        request,
        "actions/my_runs.html",
        {"page": page, "status": status, "statuses": Run.Status.choices},
    )


RUN_LIST_FIELDS = ("id", "action_name", "device_name", "device_uid", "status", "created_at", "finished_at", "user")
