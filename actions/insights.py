"""Insights for IT: what the portal's runs did over a period, per action and per day (issue 12, item 5).

Definitions (README, "Insights"):
- runs: runs created in the period (by the employee or by IT for them);
- accepted: runs Nexthink accepted for the device (Classic: sent to all or some Engines; Infinity:
  taken, whatever the device then did); share of runs. Not proof that the device ran anything;
- ran: runs the device reports it ran (Infinity's done or failed on the device; Classic never reports it);
- fixed: runs answered "yes" to "Did this fix it?"; share of the runs answered (yes or no);
- escalated: runs for which the employee asked IT for help ("Get help from IT": a Ticket row,
  whatever became of it); share of runs;
- problems: an employee's runs of one action, each less than PROBLEM_GAP (24 h) after the one before,
  are one problem (eight quick tries are one problem, not eight);
- tickets avoided: problems whose last run was accepted and not reported failed (sent, partial,
  done), was not answered "no", and for none of whose runs the employee asked IT for help.

Each figure set is one grouped query in the database (per action; problems per action, with window
functions; per day and outcome), whatever the number of runs, actions or days; the index
(created_at, action) on Run serves the period's filter.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext, gettext_lazy

from actions.models import Run, Ticket
from actions.runs import states
from actions.runs.states import REACHED_DEVICE
from actions.sql import constants

Status = Run.Status
# The lifecycle's own sets (actions/runs/lifecycle.py), so that a new status is counted somewhere.
REACHED = sorted(REACHED_DEVICE)
# Nexthink took the run for the device (Classic's sent is only that); Infinity then says what the device did.
ACCEPTED = sorted(states.WENT_OUT)
RAN_ON_DEVICE = sorted({Status.DONE, Status.DEVICE_FAILED})
# Runs of one action by one employee less than this apart are one problem ("tickets avoided").
PROBLEM_GAP = timedelta(hours=24)
IN_FLIGHT = sorted(states.IN_FLIGHT | {Status.FOLLOWING})
# The chart's outcomes, bottom to top, with their colours (SVG fill attributes: the CSP forbids style).
OUTCOMES = [
    ("accepted", gettext_lazy("Accepted by Nexthink"), "#66bb6a", Q(status__in=[Status.SENT, Status.PARTIAL])),
    ("done", gettext_lazy("Ran on the device"), "#1b5e20", Q(status=Status.DONE)),
    ("device_failed", gettext_lazy("Failed on the device"), "#6a1b9a", Q(status=Status.DEVICE_FAILED)),
    ("failed", gettext_lazy("Not sent or never ran"), "#c62828", Q(status__in=[Status.FAILED, Status.EXPIRED])),
    ("unknown", gettext_lazy("Outcome unknown"), "#f9a825", Q(status=Status.UNKNOWN)),
    ("in_flight", gettext_lazy("In progress"), "#90a4ae", Q(status__in=IN_FLIGHT)),
    ("not_approved", gettext_lazy("Not approved"), "#5d4037", Q(status__in=sorted(states.NOT_APPROVED))),
]
MAX_DAYS = 366


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def bounds(self) -> tuple[datetime, datetime]:
        """[start 00:00, the day after end 00:00) in the site's time zone."""
        zone = timezone.get_current_timezone()
        return (
            datetime.combine(self.start, time.min, tzinfo=zone),
            datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=zone),
        )


def default_period(today: date | None = None) -> Period:
    today = today or timezone.localdate()
    return Period(today - timedelta(days=29), today)


def runs_in(period: Period) -> QuerySet[Run]:
    since, until = period.bounds()
    return Run.objects.filter(created_at__gte=since, created_at__lt=until)


@dataclass
class ActionFigures:
    action_id: int | None
    name: str
    runs: int
    accepted: int
    ran: int
    answered: int
    fixed: int
    not_fixed: int
    escalated: int
    problems: int = 0
    avoided: int = 0

    @staticmethod
    def share(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def accepted_share(self) -> float | None:
        return self.share(self.accepted, self.runs)

    @property
    def fixed_share(self) -> float | None:
        return self.share(self.fixed, self.answered)

    @property
    def escalated_share(self) -> float | None:
        return self.share(self.escalated, self.runs)


COUNTED = ("runs", "accepted", "ran", "answered", "fixed", "not_fixed", "escalated")
FIGURES = (*COUNTED, "problems", "avoided")


def action_query(period: Period) -> QuerySet:
    """The per-action figures but problems: one grouped query (bench/insights.py explains it)."""
    # Annotation names differ from the fields they count (Run.fixed): the filters must see the fields.
    counts = {
        "n_runs": Count("pk"),
        "n_accepted": Count("pk", filter=Q(status__in=ACCEPTED)),
        "n_ran": Count("pk", filter=Q(status__in=RAN_ON_DEVICE)),
        "n_answered": Count("pk", filter=Q(fixed__isnull=False)),
        "n_fixed": Count("pk", filter=Q(fixed=True)),
        "n_not_fixed": Count("pk", filter=Q(fixed=False)),
        "n_escalated": Count("pk", filter=Q(ticket__isnull=False)),
    }
    return (
        runs_in(period)
        .values("action_id")
        .annotate(label=Coalesce(Max("action__name"), Max("action_name")), **counts)
        .order_by()
    )


def figures_by_action(period: Period) -> list[ActionFigures]:
    """One row per action that ran in the period (a deleted action keeps the name it ran under)."""
    problems = problems_by_action(period)
    return [
        ActionFigures(
            action_id=row["action_id"],
            name=row["label"],
            **{key: row[f"n_{key}"] for key in COUNTED},
            **dict(zip(("problems", "avoided"), problems.get(row["action_id"], (0, 0)), strict=True)),
        )
        for row in action_query(period)
    ]


def totals(rows: list[ActionFigures]) -> ActionFigures:
    return ActionFigures(None, gettext("All actions"), **{f: sum(getattr(r, f) for r in rows) for f in FIGURES})


# Seconds since 1970 of a run's creation, as each database writes it (the gap between two runs).
_EPOCH = {
    "postgresql": "EXTRACT(EPOCH FROM r.created_at)",
    "sqlite": "(julianday(r.created_at) - 2440587.5) * 86400.0",
}


def problems_sql(period: Period) -> tuple[str, list]:
    """Problems and tickets avoided per action: one query, window functions over the period's runs.

    A run starts a problem when the same employee's previous run of the action is PROBLEM_GAP or more
    before it, and ends one when the next is. A problem is avoided when its ending run is ok and the
    employee's running count of escalations did not grow since the problem's start. One sort of the
    runs (employee, action, time) serves every window; no grouping per problem.
    """
    run, ticket = Run._meta.db_table, Ticket._meta.db_table
    epoch = _EPOCH.get(connection.vendor)
    if epoch is None:
        raise NotImplementedError(f"insights: no time arithmetic for {connection.vendor}")
    reached = ", ".join(["%s"] * len(REACHED))
    since, until = period.bounds()
    gap = PROBLEM_GAP.total_seconds()
    # Only table names, an expression of ours and placeholders are formatted in: every value is a parameter.
    sql = f"""
    WITH timed AS (
        SELECT r.id, r.user_id, r.action_id, {epoch} AS t,
               CASE WHEN tk.id IS NULL THEN 0 ELSE 1 END AS escalated,
               CASE WHEN r.status IN ({reached}) AND (r.fixed IS NULL OR r.fixed = %s) THEN 1 ELSE 0 END AS ok
        FROM {run} r LEFT JOIN {ticket} tk ON tk.run_id = r.id
        WHERE r.created_at >= %s AND r.created_at < %s
    ), edged AS (
        SELECT id, user_id, action_id, t, escalated, ok,
               CASE WHEN LAG(t) OVER w IS NULL OR t - LAG(t) OVER w >= %s THEN 1 ELSE 0 END AS starts,
               CASE WHEN LEAD(t) OVER w IS NULL OR LEAD(t) OVER w - t >= %s THEN 1 ELSE 0 END AS ends,
               SUM(escalated) OVER (PARTITION BY user_id, action_id ORDER BY t, id ROWS UNBOUNDED PRECEDING)
                   AS escalations
        FROM timed
        WINDOW w AS (PARTITION BY user_id, action_id ORDER BY t, id)
    ), marked AS (
        SELECT action_id, starts, ends, ok, escalations,
               MAX(CASE WHEN starts = 1 THEN escalations - escalated END) OVER (
                   PARTITION BY user_id, action_id ORDER BY t, id ROWS UNBOUNDED PRECEDING
               ) AS escalations_before
        FROM edged
    )
    SELECT action_id, SUM(starts),
           SUM(CASE WHEN ends = 1 AND ok = 1 AND escalations = escalations_before THEN 1 ELSE 0 END)
    FROM marked GROUP BY action_id
    """  # noqa: S608
    adapt = connection.ops.adapt_datetimefield_value  # as the ORM writes them (SQLite: UTC text)
    return sql, [*REACHED, True, adapt(since), adapt(until), gap, gap]


def problems_by_action(period: Period) -> dict[int | None, tuple[int, int]]:
    """{action id: (problems, tickets avoided)} over the period's runs (None: deleted actions)."""
    sql, params = problems_sql(period)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {action_id: (int(problems), int(avoided or 0)) for action_id, problems, avoided in cursor.fetchall()}


def day_query(period: Period) -> QuerySet:
    """Runs per day and outcome: one grouped query."""
    counts = {key: Count("pk", filter=where) for key, _, _, where in OUTCOMES}
    return runs_in(period).annotate(day=TruncDate("created_at")).values("day").annotate(**counts).order_by()


def runs_per_day(period: Period) -> list[dict]:
    """Every day of the period, oldest first, with its runs per outcome (0 where none)."""
    found = {row.pop("day"): row for row in day_query(period)}
    empty = {key: 0 for key, *_ in OUTCOMES}
    days = (period.start + timedelta(days=n) for n in range(period.days))
    return [{"day": day, **found.get(day, empty)} for day in days]


# --- Sorting ---------------------------------------------------------------------------------------

SORT_KEYS = {
    "name": lambda r: r.name.lower(),
    "runs": lambda r: r.runs,
    "accepted": lambda r: r.accepted_share or 0,
    "fixed": lambda r: r.fixed_share or 0,
    "escalated": lambda r: r.escalated_share or 0,
    "ran": lambda r: r.ran,
    "avoided": lambda r: r.avoided,
}
DEFAULT_ORDER = "-runs"


def sort_rows(rows: list[ActionFigures], order: str) -> tuple[list[ActionFigures], str]:
    """Rows in the order ?o= asks for ("runs", "-runs", ...); an unknown order is the default."""
    key = order.lstrip("-")
    if key not in SORT_KEYS:
        order, key = DEFAULT_ORDER, DEFAULT_ORDER.lstrip("-")
    ordered = sorted(rows, key=lambda r: r.name.lower())  # ties read alphabetically
    return sorted(ordered, key=SORT_KEYS[key], reverse=order.startswith("-")), order


# --- The chart -------------------------------------------------------------------------------------

CHART_WIDTH, CHART_HEIGHT = 760, 276
PLOT_LEFT, PLOT_TOP, PLOT_BOTTOM = 48, 12, 56
LEGEND_PER_ROW = 4


def chart(days: list[dict]) -> dict:
    """Stacked bars, one per day, as plain numbers for the template's SVG (no script, no style)."""
    plot_width = CHART_WIDTH - PLOT_LEFT - 8
    plot_height = CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM
    highest = max((sum(d[k] for k, *_ in OUTCOMES) for d in days), default=0)
    top = _nice_ceiling(highest)
    slot = plot_width / max(len(days), 1)
    bar_width = max(slot * 0.8, 1)
    baseline = PLOT_TOP + plot_height
    bars = []
    for n, day in enumerate(days):
        x = PLOT_LEFT + n * slot + (slot - bar_width) / 2
        y = baseline
        for key, label, colour, _ in OUTCOMES:
            height = plot_height * day[key] / top if top else 0
            if day[key]:
                y -= height
                bars.append(
                    {
                        "x": round(x, 1),
                        "y": round(y, 1),
                        "width": round(bar_width, 1),
                        "height": round(height, 1),
                        "fill": colour,
                        "title": f"{day['day'].isoformat()}: {day[key]} {label.lower()}",
                    }
                )
    ticks = [
        {"y": round(baseline - plot_height * i / 4, 1), "label": round(top * i / 4)} for i in range(5) if top or i == 0
    ]
    step = max(1, len(days) // 8)
    day_labels = [
        {"x": round(PLOT_LEFT + n * slot + slot / 2, 1), "label": date_format(d["day"], "M d")}
        for n, d in enumerate(days)
        if n % step == 0
    ]
    legend = [
        {
            "x": PLOT_LEFT + (i % LEGEND_PER_ROW) * 170,
            "y": CHART_HEIGHT - 28 + (i // LEGEND_PER_ROW) * 16,
            "fill": colour,
            "label": label,
        }
        for i, (_, label, colour, _) in enumerate(OUTCOMES)
    ]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": PLOT_LEFT,
        "right": CHART_WIDTH - 8,
        "baseline": baseline,
        "label_y": baseline + 16,
        "bars": bars,
        "ticks": ticks,
        "days": day_labels,
        "legend": legend,
        "total": sum(sum(d[k] for k, *_ in OUTCOMES) for d in days),
    }


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 4, 5, 10, 20, 40, 50, 100... that is at least `value` (and divides by 4 nicely)."""
    if value <= 0:
        return 0
    magnitude = 1
    while True:
        for factor in (1, 2, 4, 5, 8):
            if factor * magnitude >= value:
                return factor * magnitude
        magnitude *= 10


def runs_in_flight_now() -> list[tuple[str, int, datetime]]:
    """(status, how many, since when the oldest waits) for each status a run is in flight in now:
    the state Prometheus reads at each scrape (actions/views/metrics.py). One grouped query, served by
    the (status, created_at) index."""
    rows = (
        Run.objects.filter(status__in=constants(IN_FLIGHT))
        .values("status")
        # An approved run waits to be sent since its approval, not since it was asked for.
        .annotate(n=Count("id"), oldest=Min(Coalesce("decided_at", "created_at")))
    )
    return [(row["status"], row["n"], row["oldest"]) for row in rows.order_by()]


# --- Approvals: asked, granted, denied, expired, and how long a decision took -----------------------
@dataclass(frozen=True)
class ApprovalFigures:
    asked: int
    granted: int
    denied: int
    expired: int
    cancelled: int
    waiting: int
    median_decision_seconds: float | None


def approval_figures(period: Period) -> ApprovalFigures:
    """The approval requests made in the period (runs with an approval deadline): one grouped query,
    then the decided ones' times (few: only actions that need approval ask)."""
    asked = runs_in(period).filter(approval_expires_at__isnull=False)
    decided = Q(decided_at__isnull=False)
    counts = asked.aggregate(
        asked=Count("pk"),
        granted=Count("pk", filter=decided & ~Q(status=Status.DENIED)),
        denied=Count("pk", filter=Q(status=Status.DENIED)),
        expired=Count("pk", filter=Q(status=Status.APPROVAL_EXPIRED)),
        cancelled=Count("pk", filter=Q(status=Status.CANCELLED)),
        waiting=Count("pk", filter=Q(status=Status.WAITING_APPROVAL)),
    )
    times = [(d - c).total_seconds() for c, d in asked.filter(decided).values_list("created_at", "decided_at")]
    return ApprovalFigures(**counts, median_decision_seconds=statistics.median(times) if times else None)


def duration_text(seconds: float | None) -> str:
    """A duration as staff read it: "45 s", "12 min", "3 h 20 min", "2 d 4 h"; "–" for none."""
    if seconds is None:
        return "–"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{secs} s"
