"""The reaper (beat, every REAPER_INTERVAL_SECONDS): no run stays silently stuck.

- runs that could not be sent for RUN_QUEUE_MAX_AGE_SECONDS fail ("nothing was sent");
- runs in "sending" longer than the platform's longest send (its max_send_seconds) plus
  RUN_SENDING_GRACE_SECONDS are marked unknown (the worker died);
- runs still "following" long after Nexthink's wait for the device was over end unknown: no
  follow-up read them in time (its pass keeps failing or is not running, its lease is stuck, or the
  portal no longer runs on a platform that follows runs up);
- runs due to be sent whose message the broker lost are handed to it again, once: while the
  broker still holds as many waiting messages as there are such runs, they are only waiting in a
  backlog, and another copy would only multiply the backlog.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Now

from actions.models import Run
from actions.nexthink import platform
from actions.runs import lifecycle
from actions.runs.dispatch import run_enqueue
from actions.runs.follow_up import LEASE_SECONDS

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
    if requeued or marked or expired or unread:
        log.info(
            "reaper: requeued %s, marked unknown %s, expired %s, ended unread %s", requeued, marked, expired, unread
        )
    return ReapReport(requeued=requeued, marked_unknown=marked, expired=expired, unread=unread)


def _expire_unsent() -> int:
    """A run that could not be sent for RUN_QUEUE_MAX_AGE_SECONDS fails, rather than go out hours late."""
    too_old = Now() - timedelta(seconds=settings.RUN_QUEUE_MAX_AGE_SECONDS)
    pks = list(
        Run.objects.filter(status__in=[Status.QUEUED, Status.RETRYING], created_at__lt=too_old).values_list(
            "pk", flat=True
        )[:BATCH]
    )
    if not pks:
        return 0
    expired = sum(lifecycle.reap(pk, lifecycle.NOT_SENT) for pk in pks)
    log.warning("reaper: %s run(s) failed: not sent within %s s", expired, settings.RUN_QUEUE_MAX_AGE_SECONDS)
    return expired


def sending_deadline(run: Run, on: platform.Platform) -> float:
    """Seconds after which a run still "sending" has lost its worker: the platform's own worst case
    for a send, plus RUN_SENDING_GRACE_SECONDS (a slow database, a busy worker)."""
    return on.max_send_seconds(run) + settings.RUN_SENDING_GRACE_SECONDS


def _mark_stuck_sending() -> int:
    """A run still "sending" after its send's longest possible time: its worker died mid-call."""
    on = platform.current()
    now = lifecycle.database_now()
    candidates = (
        Run.objects.filter(
            status=Status.SENDING, sending_at__lt=now - timedelta(seconds=settings.RUN_SENDING_GRACE_SECONDS)
        )
        .only("pk", "sending_at", "timeout_seconds", "attempts")
        .order_by("sending_at")[:BATCH]
    )
    marked = 0
    for run in candidates:
        deadline = sending_deadline(run, on)
        if run.sending_at + timedelta(seconds=deadline) > now:
            continue
        # Only this very attempt: a run claimed again since (a new sending_at) is left alone.
        with transaction.atomic():
            if lifecycle.reap(run.pk, lifecycle.WORKER_LOST, where=Q(sending_at=run.sending_at)):
                marked += 1
                lifecycle.log_attempt(run.pk, number=run.attempts, started_at=run.sending_at, outcome="worker_lost")
                log.warning("run %s unknown: still sending after %.0f s", run.pk, deadline)
    return marked


# How long after Nexthink's wait for the device (expires_at) a run may still be "following" while its
# follow-up works: past EXPIRY_GRACE_SECONDS the first look ends it whatever it reads, and the next
# look is at most MAX_CHECK_SECONDS away, or LEASE_SECONDS more when the pass that claimed it died.
UNREAD_AFTER_SECONDS = lifecycle.EXPIRY_GRACE_SECONDS + lifecycle.MAX_CHECK_SECONDS + LEASE_SECONDS


def _end_unread() -> int:
    """A run still "following" UNREAD_AFTER_SECONDS after its expiry ends unknown: nothing read it in time."""
    too_old = Now() - timedelta(seconds=UNREAD_AFTER_SECONDS)
    pks = list(Run.objects.filter(status=Status.FOLLOWING, expires_at__lt=too_old).values_list("pk", flat=True)[:BATCH])
    return sum(lifecycle.end_unread(pk) for pk in pks)


def _requeue_lost() -> int:
    """Hand runs due to be sent to the broker again when it can no longer be holding their messages."""
    stale = Now() - timedelta(seconds=settings.RUN_REQUEUE_AFTER_SECONDS)
    due = Q(status=Status.QUEUED, created_at__lt=stale) | Q(status=Status.RETRYING, next_attempt_at__lt=stale)
    not_recently_enqueued = Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale)
    rows = list(Run.objects.filter(due & not_recently_enqueued).values_list("pk", "enqueued_at")[:BATCH])
    if not rows:
        return 0
    never_handed = [pk for pk, enqueued_at in rows if enqueued_at is None]
    handed = [pk for pk, enqueued_at in rows if enqueued_at is not None]
    if handed:
        waiting = waiting_messages()
        if waiting is None or waiting >= len(handed):
            # Broker unreachable, or enough messages waiting to be theirs: a backlog, not a loss.
            handed = []
    return sum(run_enqueue(run_id=pk) for pk in never_handed + handed)


def waiting_messages() -> int | None:
    """How many dispatch messages wait in the broker's queue; None when the broker cannot be asked."""
    from portal.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            with conn.channel() as channel:
                # Not passive: Redis has no key for an empty queue, and a passive declare calls that missing.
                return channel.queue_declare(queue=settings.CELERY_TASK_DEFAULT_QUEUE).message_count
    except Exception:
        log.warning("reaper: cannot count the broker's waiting messages", exc_info=True)
        return None
