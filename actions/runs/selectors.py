"""Reads of runs: only ever the runs made for the signed-in employee."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Exists, OuterRef, Q, QuerySet

from actions.catalog.selectors import visibility_rule
from actions.compiled import compiled_instances, compiled_rows, joined_columns
from actions.models import Device, EngineResult, RemoteAction, Run
from actions.nexthink import platform
from actions.runs.states import IN_FLIGHT, platform_statuses

PAGE_SIZE = 20


def filter_statuses() -> list[str]:
    """The statuses My runs offers to filter by: those that exist on this portal's platform."""
    return platform_statuses(follows_up=platform.current().follows_up)


def runs_of(user) -> QuerySet[Run]:
    """The runs made for this user, newest first: the only runs an employee may ever see."""
    return Run.objects.filter(user=user).order_by("-created_at", "-id")


# What the run page and its polls show of a run besides the run: its action, its device, its ticket.
RUN_PAGE_RELATED = ("action", "device", "ticket")


def own_run(user, run_id: uuid.UUID) -> Run | None:
    """The user's own run, with its action, device and ticket (at most one), or None: another user's
    run is as absent as one that does not exist. The run page and each of its polls read it: one
    query, compiled once per process (actions/compiled.py)."""
    found = compiled_instances(Run, _own_run, user.pk, run_id, related=RUN_PAGE_RELATED)
    return found[0] if found else None


def _own_run(user_id: int, run_id: uuid.UUID) -> QuerySet:
    return Run.objects.filter(user_id=user_id, pk=run_id).values_list(*joined_columns(Run, RUN_PAGE_RELATED))


def visible_and_owned(run_id) -> tuple[bool, bool]:
    """Is the run's action still enabled and visible to its employee (the catalog's rule), and is its
    device still theirs (the owner column)? One query, compiled once per process (actions/compiled.py):
    dispatch re-checks both before sending, and "Run again" asks the first."""
    [(visible, owned)] = compiled_rows(_run_checks, run_id)
    return bool(visible), bool(owned)


def _run_checks(run_id) -> QuerySet:
    employee = OuterRef(OuterRef(OuterRef("user_id")))  # from inside the rule's membership subquery
    visible = RemoteAction.objects.filter(visibility_rule(employee), pk=OuterRef("action_id"))
    owned = Device.objects.filter(pk=OuterRef("device_id"), owner_id=OuterRef("user_id"))
    return (
        Run.objects.filter(pk=run_id)
        .annotate(action_visible=Exists(visible), device_owned=Exists(owned))
        .values_list("action_visible", "device_owned")
    )


def engine_results(run: Run) -> list[EngineResult]:
    """The run's Engine answers; none to read while it waits or is being sent (they come with its outcome)."""
    return [] if run.status in IN_FLIGHT else list(run.engine_results.all())


def labelled_outputs(run: Run) -> dict[str, str]:
    """The action's outputs under the names Nexthink gives them (their ids where it gives none)."""
    labels = run.action.output_labels if run.action else {}
    return {labels.get(key, key): value for key, value in run.outputs.items()}


@dataclass(frozen=True)
class RunPage:
    runs: list[Run]
    older: str = ""  # cursor of the next page back in time, if there is one
    newer: str = ""


def cursor_of(run: Run) -> str:
    return f"{int(run.created_at.timestamp() * 1_000_000)}_{run.pk.hex}"


def parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID] | None:
    micros, _, pk = cursor.partition("_")
    try:
        return datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC), uuid.UUID(hex=pk)
    except (ValueError, OverflowError, OSError):
        return None


def runs_page(runs: QuerySet[Run], *, before: str = "", after: str = "") -> RunPage:
    """One page of `runs` (newest first) by keyset, not OFFSET: as fast on the last page as on the first.

    `before`: the runs older than that cursor; `after`: the runs newer than it (the page before).
    """
    runs = runs.order_by("-created_at", "-id")
    if after and (position := parse_cursor(after)):
        created, pk = position
        # `created_at >= created` says nothing new, but is a bound the (user, -created_at) index reads
        # from in any plan; the OR alone is a filter over all of a heavy employee's runs.
        newer = runs.filter(Q(created_at__gt=created) | Q(created_at=created, id__gt=pk), created_at__gte=created)
        rows = list(newer.order_by("created_at", "id")[: PAGE_SIZE + 1])
        more_newer = len(rows) > PAGE_SIZE
        page = list(reversed(rows[:PAGE_SIZE]))
        return RunPage(
            page,
            older=cursor_of(page[-1]) if page else "",
            newer=cursor_of(page[0]) if page and more_newer else "",
        )
    has_newer = False
    if before and (position := parse_cursor(before)):
        created, pk = position
        runs = runs.filter(Q(created_at__lt=created) | Q(created_at=created, id__lt=pk), created_at__lte=created)
        has_newer = True
    rows = list(runs[: PAGE_SIZE + 1])
    page = rows[:PAGE_SIZE]
    return RunPage(
        page,
        older=cursor_of(page[-1]) if len(rows) > PAGE_SIZE else "",
        newer=cursor_of(page[0]) if page and has_newer else "",
    )
