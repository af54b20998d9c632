"""Following runs up on a platform that reports the device's own result (Nexthink Infinity).

Beat runs `runs_follow_up` every few seconds. Each due run is claimed by moving its next look
forward (a conditional update: two passes never read the same run at once), then read once through
the platform; a final reading ends the run through the lifecycle, any other schedules the next look,
backed off from 5 s to 5 minutes, until Nexthink's own wait for the device is over. Past that wait
and EXPIRY_GRACE_SECONDS a run ends even when its result cannot be read (a deleted or misnamed saved
query, revoked rights): unknown, "could not read what happened". The reaper ends the runs no
follow-up read in time (reaper.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models.functions import Now

from actions.models import Run
from actions.nexthink import platform
from actions.nexthink.errors import ActApiError
from actions.runs import lifecycle, outcomes
from actions.sql import Constant

log = logging.getLogger("actions.runs")
Status = Run.Status
BATCH = 100
LEASE_SECONDS = 120  # a pass that dies mid-read leaves the run to be read again after this


def runs_follow_up() -> int:
    """Read the device's result of every due run; returns how many were read."""
    # The status as a literal: the partial index run_follow_up_due serves any plan (actions/sql.py).
    due = Run.objects.filter(status=Constant(Status.FOLLOWING), next_check_at__lte=Now()).order_by("next_check_at")
    read = 0
    for pk in due.values_list("pk", flat=True)[:BATCH]:
        # Claimed while still due: the first pass moves the next look past now, and a second one no
        # longer finds it due (no equality on a time the database's clock wrote: see the reaper).
        claimed = Run.objects.filter(pk=pk, status=Status.FOLLOWING, next_check_at__lte=Now()).update(
            next_check_at=outcomes.in_seconds(LEASE_SECONDS)
        )
        if claimed:
            run_follow_up(Run.objects.get(pk=pk))
            read += 1
    return read


def run_follow_up(run: Run) -> None:
    expired = run.expires_at is not None and lifecycle.database_now() > run.expires_at + timedelta(
        seconds=outcomes.EXPIRY_GRACE_SECONDS
    )
    try:
        result = platform.current().device_result(run.request_id, run.device_uid, run.action_kind)
    except ActApiError as error:
        log.warning("run %s: the device's result could not be read: %s", run.pk, error)
        if expired:
            lifecycle.end_unread(run.pk)  # Nexthink's wait is over: it ends now, not never
        else:
            lifecycle.record_follow_up(run, None, None)  # look again later, backed off
        return
    lifecycle.record_follow_up(run, outcomes.outcome_of_device_result(result, expired=expired), result)
