"""Admin → Insights: per action over a period, what the runs did; a chart per day; a CSV export."""

from __future__ import annotations

import csv

from django import forms
from django.conf import settings
from django.contrib import admin
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from actions import insights
from actions.models import RunInsight

COLUMNS = [  # (?o= key, heading)
    ("name", _("Action")),
    ("runs", _("Runs")),
    ("accepted", _("Accepted by Nexthink")),
    ("fixed", _("Fixed")),
    ("escalated", _("Escalated")),
    ("avoided", _("Tickets avoided")),
]
# Only Infinity says what the device did; on Classic the column would be an empty promise.
RAN_COLUMN = ("ran", _("Ran on the device"))


class PeriodForm(forms.Form):
    start = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("to"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if start > end:
                raise forms.ValidationError(gettext("The start must not be after the end."))
            if (end - start).days + 1 > insights.MAX_DAYS:
                raise forms.ValidationError(gettext("Choose at most %(days)d days.") % {"days": insights.MAX_DAYS})
        return cleaned


def period_of(request) -> tuple[PeriodForm, insights.Period]:
    default = insights.default_period()
    if "start" in request.GET or "end" in request.GET:
        form = PeriodForm(request.GET)
        if form.is_valid():
            return form, insights.Period(form.cleaned_data["start"], form.cleaned_data["end"])
        return form, default
    return PeriodForm(initial={"start": default.start, "end": default.end}), default


@admin.register(RunInsight)
class InsightsAdmin(admin.ModelAdmin):
    """No rows to edit: the change list is the insights page."""

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("actions.view_run")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        form, period = period_of(request)
        rows, order = insights.sort_rows(insights.figures_by_action(period), request.GET.get("o", ""))
        if request.GET.get("format") == "csv":
            return csv_response(rows, period)
        query = {"start": period.start.isoformat(), "end": period.end.isoformat()}
        here = reverse("admin:actions_runinsight_changelist")
        headers = []
        device_reports = settings.NEXTHINK_PLATFORM == "infinity"
        columns = [*COLUMNS[:3], RAN_COLUMN, *COLUMNS[3:]] if device_reports else COLUMNS
        for key, heading in columns:
            current = order.lstrip("-") == key
            # A click on the current column flips it; on another, numbers start high, names at A.
            flip = ("" if order.startswith("-") else "-") if current else ("" if key == "name" else "-")
            headers.append(
                {
                    "heading": heading,
                    "url": f"{here}?{urlencode(query | {'o': flip + key})}",
                    "sorted": ("descending" if order.startswith("-") else "ascending") if current else "",
                }
            )
        approvals = insights.approval_figures(period)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Insights"),
            "opts": self.model._meta,
            "form": form,
            "period": period,
            "rows": rows,
            "total": insights.totals(rows),
            "headers": headers,
            "device_reports": device_reports,
            "problem_gap_hours": int(insights.PROBLEM_GAP.total_seconds() // 3600),
            "chart": insights.chart(insights.runs_per_day(period)),
            "approvals": approvals,
            "median_decision": insights.duration_text(approvals.median_decision_seconds),
            "csv_url": f"{here}?{urlencode(query | {'o': order, 'format': 'csv'})}",
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/actions/insights.html", context)


CSV_HEADER = [
    "action",
    "runs",
    "accepted_by_nexthink",
    "accepted_share",
    "ran_on_device",
    "answered",
    "fixed",
    "fixed_share",
    "not_fixed",
    "escalated",
    "escalated_share",
    "problems",
    "tickets_avoided",
]


def csv_response(rows, period: insights.Period) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="insights-{period.start}-{period.end}.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_HEADER)
    for row in [*rows, insights.totals(rows)]:
        writer.writerow(
            [
                safe_cell(row.name),
                row.runs,
                row.accepted,
                _ratio(row.accepted_share),
                row.ran,
                row.answered,
                row.fixed,
                _ratio(row.fixed_share),
                row.not_fixed,
                row.escalated,
                _ratio(row.escalated_share),
                row.problems,
                row.avoided,
            ]
        )
    return response


def safe_cell(text: str) -> str:
    """A curator's text that a spreadsheet would run as a formula starts with a quote instead."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
