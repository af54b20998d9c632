"""The reaper (beat, every REAPER_INTERVAL_SECONDS, a few seconds): no run stays silently stuck.

- runs that could not be sent for RUN_QUEUE_MAX_AGE_SECONDS fail ("nothing was sent");
- runs in "sending" longer than the platform's longest send (its max_send_seconds) plus
  RUN_SENDING_GRACE_SECONDS are marked unknown (the worker died);
- runs still "following" long after Nexthink's wait for the device was over end unknown: no
  follow-up read them in time (its pass keeps failing or is not running, its lease is stuck, or the
  portal no longer runs on a platform that follows runs up);
- requests waiting for approval whose approvers' e-mail task was lost are mailed (notify.approvers_sweep);
- runs that ended while their page was closed are mailed about, one e-mail per burst (notify.runs_notify);
- runs due to be sent that no broker message carries are handed to it (again): at the first pass
  after the broker is back for those it never took, and, for those whose message it lost, once the
  waiting messages are fewer than those runs (a backlog is left alone, not multiplied).

Each pass is a few indexed reads of in-flight runs only, so it can run every few seconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Now

from actions import broker
from actions.models import Run
from actions.nexthink import platform
from actions.runs import lifecycle, outcomes, states
from actions.runs.approvals import approvals_expire
from actions.runs.dispatch import run_enqueue
from actions.runs.follow_up import LEASE_SECONDS
from actions.runs.notify import approvers_sweep, runs_notify
from actions.sql import Constant, constants

log = logging.getLogger("actions.runs")
Status = Run.Status
BATCH = 500


@dataclass(frozen=True)
class ReapReport:
    requeued: int
    marked_unknown: int
    expired: int = 0
    unread: int = 0


def runs_reap() -> ReapReport:
    expired = _expire_unsent()
    marked = _mark_stuck_sending()
    requeued = _requeue_lost()
    unread = _end_unread()
    not_decided = approvals_expire()
    approvers_sweep()
    runs_notify()
    if not_decided:
        log.info("reaper: %s request(s) not approved in time ended", not_decided)
    if requeued or marked or expired or unread:
        log.info(
            "reaper: requeued %s, marked unknown %s, expired %s, ended unread %s", requeued, marked, expired, unread
        )
    return ReapReport(requeued=requeued, marked_unknown=marked, expired=expired, unread=unread)


def _expire_unsent() -> int:
    """A run that could not be sent for RUN_QUEUE_MAX_AGE_SECONDS fails, rather than go out hours late."""
    too_old = Now() - timedelta(seconds=settings.RUN_QUEUE_MAX_AGE_SECONDS)
    # Due to be sent since it was asked for, or since it was approved (a run that waited for approval).
    waited_too_long = Q(created_at__lt=too_old) & (Q(decided_at__isnull=True) | Q(decided_at__lt=too_old))
    pks = list(
        Run.objects.filter(waited_too_long, status__in=constants(states.UNSENT)).values_list("pk", flat=True)[:BATCH]
    )
    if not pks:
        return 0
    # Still unsent and still too old at the moment of the move: a run a worker claimed since the
    # read above is "sending" and is left to its worker.
    still_unsent = waited_too_long
    expired = sum(lifecycle.reap(pk, outcomes.NOT_SENT, leaving=states.UNSENT, where=still_unsent) for pk in pks)
    log.warning("reaper: %s run(s) failed: not sent within %s s", expired, settings.RUN_QUEUE_MAX_AGE_SECONDS)
    return expired


def sending_deadline(run: Run, on: platform.Platform) -> float:
    """Seconds after which a run still "sending" has lost its worker: the platform's own worst case
    for a send, plus RUN_SENDING_GRACE_SECONDS (a slow database, a busy worker)."""
    return on.max_send_seconds(run.timeout_seconds) + settings.RUN_SENDING_GRACE_SECONDS


def _mark_stuck_sending() -> int:
    """A run still "sending" after its send's longest possible time: its worker died mid-call."""
    on = platform.current()
    now = lifecycle.database_now()
    candidates = (
        Run.objects.filter(
            status=Constant(Status.SENDING),
            sending_at__lt=now - timedelta(seconds=settings.RUN_SENDING_GRACE_SECONDS),
        )
        .only("pk", "sending_at", "timeout_seconds", "attempts")
        .order_by("sending_at")[:BATCH]
    )
    marked = 0
    for run in candidates:
        deadline = sending_deadline(run, on)
        if run.sending_at is None or run.sending_at + timedelta(seconds=deadline) > now:
            continue
        # Only this very attempt, still sending: a run claimed again since (its attempts counted on)
        # or answered meanwhile is left alone. The attempt number, not sending_at, names the attempt:
        # the database's clock writes sending_at (on SQLite as millisecond text that never equals a
        # value read back and written again by Python).
        with transaction.atomic():
            if lifecycle.reap(run.pk, outcomes.WORKER_LOST, leaving=(Status.SENDING,), where=Q(attempts=run.attempts)):
                marked += 1
                lifecycle.log_attempt(run.pk, number=run.attempts, started_at=run.sending_at, outcome="worker_lost")
                log.warning("run %s unknown: still sending after %.0f s", run.pk, deadline)
    return marked


# How long after Nexthink's wait for the device (expires_at) a run may still be "following" while its
# follow-up works: past EXPIRY_GRACE_SECONDS the first look ends it whatever it reads, and the next
# look is at most MAX_CHECK_SECONDS away, or LEASE_SECONDS more when the pass that claimed it died.
UNREAD_AFTER_SECONDS = outcomes.EXPIRY_GRACE_SECONDS + outcomes.MAX_CHECK_SECONDS + LEASE_SECONDS


def _end_unread() -> int:
    """A run still "following" UNREAD_AFTER_SECONDS after its expiry ends unknown: nothing read it in time."""
    too_old = Now() - timedelta(seconds=UNREAD_AFTER_SECONDS)
    following = Run.objects.filter(status=Constant(Status.FOLLOWING), expires_at__lt=too_old)
    pks = list(following.values_list("pk", flat=True)[:BATCH])
    return sum(lifecycle.end_unread(pk) for pk in pks)


def _requeue_lost() -> int:
    """Hand to the broker every run due to be sent that no message carries.

    The database is the truth about what must be sent. A run the broker never took (it was down at
    submit, or when a retry was planned) has no `enqueued_at`: it goes out at the first pass after
    the broker is back. A run handed over RUN_REQUEUE_AFTER_SECONDS ago and still not claimed lost
    its message (a Redis restart without persistence), unless the broker still holds at least as
    many waiting messages as there are such runs: then they only wait in a backlog, and another copy
    each would double it. Messages are counted before the runs are read again, so a backlog that
    drains meanwhile cannot look like a loss.
    """
    stale = Now() - timedelta(seconds=settings.RUN_REQUEUE_AFTER_SECONDS)
    queued, retrying = Constant(Status.QUEUED), Constant(Status.RETRYING)
    due = Q(status=queued) | Q(status=retrying, next_attempt_at__lte=Now())
    never_handed = list(Run.objects.filter(due, enqueued_at__isnull=True).values_list("pk", flat=True)[:BATCH])
    overdue = (Q(status=queued) | Q(status=retrying, next_attempt_at__lt=stale)) & Q(enqueued_at__lt=stale)
    handed = []
    if Run.objects.filter(overdue).exists():
        waiting = waiting_messages()
        handed = list(Run.objects.filter(overdue).values_list("pk", flat=True)[:BATCH])
        if waiting is None or waiting >= len(handed):
            handed = []  # broker unreachable, or enough messages waiting to be theirs: a backlog, not a loss
    return sum(_hand_over(pk) for pk in never_handed + handed)


def _hand_over(pk) -> bool:
    """Stamp, then publish, so that two passes at once (a slow pass and the next) send one copy."""
    stale = Now() - timedelta(seconds=settings.RUN_REQUEUE_AFTER_SECONDS)
    not_recently = Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale)
    if not Run.objects.filter(not_recently, pk=pk, status__in=states.UNSENT).update(enqueued_at=Now()):
        return False
    return run_enqueue(run_id=pk, stamp=False)


def waiting_messages() -> int | None:
    """How many dispatch messages wait in the broker's queue; None when the broker cannot be asked."""
    return broker.waiting(settings.CELERY_TASK_DEFAULT_QUEUE)
