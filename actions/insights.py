"""Insights for IT: what the portal's runs did over a period, per action and per day (issue 12, item 5).

Definitions (README, "Insights"):
- runs: runs created in the period (by the employee or by IT for them);
- sent: runs that reached the device: Nexthink accepted them on all or some Engines (sent, partial;
  also "done" where the platform reports the device's own result); share of runs;
- fixed: runs answered "yes" to "Did this fix it?"; share of the runs answered (yes or no);
- escalated: runs for which the employee asked IT for help ("Get help from IT": a Ticket row,
  whatever became of it); share of runs;
- tickets avoided: runs that reached the device, were not escalated and were not answered "no"
  (answered "yes", or not answered: the employee did not come back for help).

Each figure set is one grouped query in the database (per action; per day and outcome), whatever
the number of actions or days; the index (created_at, action) on Run serves the period's filter.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from actions.models import Run
from actions.runs import states
from actions.runs.states import REACHED_DEVICE
from actions.sql import constants

Status = Run.Status
# The lifecycle's own sets (actions/runs/lifecycle.py), so that a new status is counted somewhere.
REACHED = sorted(REACHED_DEVICE)
IN_FLIGHT = sorted(states.IN_FLIGHT | {Status.FOLLOWING})
# The chart's outcomes, bottom to top, with their colours (SVG fill attributes: the CSP forbids style).
OUTCOMES = [
    ("sent", "Reached the device", "#2e7d32", Q(status__in=REACHED)),
    ("device_failed", "Failed on the device", "#6a1b9a", Q(status=Status.DEVICE_FAILED)),
    ("failed", "Not sent or never ran", "#c62828", Q(status__in=[Status.FAILED, Status.EXPIRED])),
    ("unknown", "Outcome unknown", "#f9a825", Q(status=Status.UNKNOWN)),
    ("in_flight", "In progress", "#90a4ae", Q(status__in=IN_FLIGHT)),
    ("not_approved", "Not approved", "#5d4037", Q(status__in=sorted(states.NOT_APPROVED))),
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
    sent: int
    answered: int
    fixed: int
    not_fixed: int
    escalated: int
    avoided: int

    @staticmethod
    def share(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def sent_share(self) -> float | None:
        return self.share(self.sent, self.runs)

    @property
    def fixed_share(self) -> float | None:
        return self.share(self.fixed, self.answered)

    @property
    def escalated_share(self) -> float | None:
        return self.share(self.escalated, self.runs)


COUNTED = ("runs", "sent", "answered", "fixed", "not_fixed", "escalated", "avoided")


def action_query(period: Period) -> QuerySet:
    """The per-action figures: one grouped query (bench/insights.py explains it)."""
    reached = Q(status__in=REACHED)
    not_escalated = Q(ticket__isnull=True)
    # Annotation names differ from the fields they count (Run.fixed): the filters must see the fields.
    counts = {
        "n_runs": Count("pk"),
        "n_sent": Count("pk", filter=reached),
        "n_answered": Count("pk", filter=Q(fixed__isnull=False)),
        "n_fixed": Count("pk", filter=Q(fixed=True)),
        "n_not_fixed": Count("pk", filter=Q(fixed=False)),
        "n_escalated": Count("pk", filter=Q(ticket__isnull=False)),
        "n_avoided": Count("pk", filter=reached & not_escalated & (Q(fixed=True) | Q(fixed__isnull=True))),
    }
    return (
        runs_in(period)
        .values("action_id")
        .annotate(label=Coalesce(Max("action__name"), Max("action_name")), **counts)
        .order_by()
    )


def figures_by_action(period: Period) -> list[ActionFigures]:
    """One row per action that ran in the period (a deleted action keeps the name it ran under)."""
    return [
        ActionFigures(action_id=row["action_id"], name=row["label"], **{key: row[f"n_{key}"] for key in COUNTED})
        for row in action_query(period)
    ]


def totals(rows: list[ActionFigures]) -> ActionFigures:
    return ActionFigures(None, "All actions", **{f: sum(getattr(r, f) for r in rows) for f in COUNTED})


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
    "sent": lambda r: r.sent_share or 0,
    "fixed": lambda r: r.fixed_share or 0,
    "escalated": lambda r: r.escalated_share or 0,
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

CHART_WIDTH, CHART_HEIGHT = 760, 260
PLOT_LEFT, PLOT_TOP, PLOT_BOTTOM = 48, 12, 40


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
        {"x": round(PLOT_LEFT + n * slot + slot / 2, 1), "label": d["day"].strftime("%b %d")}
        for n, d in enumerate(days)
        if n % step == 0
    ]
    legend = [
        {"x": PLOT_LEFT + i * 170, "fill": colour, "label": label} for i, (_, label, colour, _) in enumerate(OUTCOMES)
    ]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": PLOT_LEFT,
        "right": CHART_WIDTH - 8,
        "baseline": baseline,
        "label_y": baseline + 16,
        "legend_y": CHART_HEIGHT - 12,
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
