"""When the run page first asks for news: about when runs of this action usually end, not sooner.

A poll before the run can have ended costs a request and tells the employee nothing the page does
not already say, so the page's first poll waits for the time this action's recent runs took from
submit to final (read once a minute per process; every 5 s while the action has none), never less
than a second, never more than five, the page's longest wait between looks (a run that takes
minutes still shows its progress within seconds). After that the page backs off as before.
"""

from __future__ import annotations

from statistics import median

from django.core.cache import cache
from django.utils import timezone

from actions.models import Run

FIRST_POLL_MIN_SECONDS = 1.0  # the page's delay when nothing is known: what it always was
FIRST_POLL_MAX_SECONDS = 5.0  # the longest the page ever waits between looks at a run being sent
# After the typical end, not at it: a run as fast as the median is then final at the first poll.
FIRST_POLL_MARGIN_SECONDS = 0.25
TYPICAL_SAMPLE = 20  # the action's latest finished runs the typical time is the median of
TYPICAL_CACHE_SECONDS = 60
NO_HISTORY_CACHE_SECONDS = 5  # an action's first runs: its first finished run counts soon after


def first_poll_ms(run: Run) -> int:
    """Milliseconds from the run page's load to its first status request."""
    elapsed = (timezone.now() - run.created_at).total_seconds()
    return round(first_poll_seconds(typical_seconds(run), elapsed) * 1000)


def first_poll_seconds(typical: float | None, elapsed: float) -> float:
    """The wait before the first poll for a run `elapsed` seconds old whose action's runs take `typical`."""
    if typical is None:
        return FIRST_POLL_MIN_SECONDS
    wait = typical - elapsed + FIRST_POLL_MARGIN_SECONDS
    return min(max(wait, FIRST_POLL_MIN_SECONDS), FIRST_POLL_MAX_SECONDS)


def typical_seconds(run: Run) -> float | None:
    """The median submit-to-final time of the latest runs of this run's action; None if none finished."""
    if run.action_id is None:
        return None
    key = f"run-typical-seconds:{run.action_id}"
    cached = cache.get(key)
    if cached is None:
        cached = _median_seconds(run) or 0.0  # 0.0: known to have no finished runs yet
        cache.set(key, cached, TYPICAL_CACHE_SECONDS if cached else NO_HISTORY_CACHE_SECONDS)
    return cached or None


def _median_seconds(run: Run) -> float | None:
    # The action's name is in the run (a snapshot) and leads an index in date order, so this reads
    # the newest few runs whatever the table's size; the action's id keeps a renamed twin out.
    spans = (
        Run.objects.filter(action_name=run.action_name, action_id=run.action_id, finished_at__isnull=False)
        .order_by("-created_at")
        .values_list("created_at", "finished_at")[:TYPICAL_SAMPLE]
    )
    seconds = [(finished - created).total_seconds() for created, finished in spans if finished is not None]
    return median(seconds) if seconds else None


# A run still waiting to be sent this long after it was submitted is "taking longer than usual",
# and its page says so: three times the action's typical time, and never under half a minute.
LATE_MIN_SECONDS = 30.0
LATE_FACTOR = 3


def late_after_seconds(typical: float | None) -> float:
    """How long after submit a run still waiting to be sent counts as late."""
    return max(LATE_MIN_SECONDS, LATE_FACTOR * (typical or 0.0))


def is_late(run: Run) -> bool:
    """True for a run still queued or retrying for clearly longer than this action's runs usually take."""
    if run.status not in (Run.Status.QUEUED, Run.Status.RETRYING):
        return False
    elapsed = (timezone.now() - run.created_at).total_seconds()
    return elapsed > LATE_MIN_SECONDS and elapsed > late_after_seconds(typical_seconds(run))


def late_at(run: Run) -> float | None:
    """When (Unix time) a run still waiting to be sent will count as late; None if that cannot come
    by time alone (it is being sent, has ended, or is late already). The run page's tag lasts until then."""
    if run.status not in (Run.Status.QUEUED, Run.Status.RETRYING):
        return None
    at = run.created_at.timestamp() + late_after_seconds(typical_seconds(run))
    return at if timezone.now().timestamp() <= at else None  # past it: late already (is_late)
