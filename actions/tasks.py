"""Thin Celery tasks: take an id, call one service.

The periodic passes run under a lock of their own (portal/locks.py): whatever beats sent them and
whichever workers took them, one pass of each kind runs at a time; a copy that finds it held does
nothing and returns None.
"""

import logging
from collections.abc import Callable

from celery import shared_task
from django.conf import settings

from actions.devices.engines import engines_sync
from actions.runs.dispatch import run_dispatch, run_enqueue
from actions.runs.follow_up import runs_follow_up
from actions.runs.notify import approvers_notify
from actions.runs.reaper import runs_reap
from portal import locks

log = logging.getLogger(__name__)


def _alone[T](name: str, a_pass: Callable[[], T]) -> T | None:
    with locks.held(name, settings.PERIODIC_LOCK_SECONDS) as mine:
        if not mine:
            log.info("%s: another worker runs this pass now; this copy does nothing", name)
            return None
        return a_pass()


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def dispatch_run(run_id: str) -> str | None:
    outcome = run_dispatch(run_id=run_id)
    if outcome and outcome.retried:
        run_enqueue(run_id=run_id, countdown=outcome.retry_in)
    return outcome.status if outcome else None


@shared_task(ignore_result=True)
def reap_runs() -> dict | None:
    report = _alone("reap-runs", runs_reap)
    if report is None:
        return None
    return {
        "requeued": report.requeued,
        "marked_unknown": report.marked_unknown,
        "expired": report.expired,
        "unread": report.unread,
    }


@shared_task(ignore_result=True)
def sync_engines_task() -> dict | None:
    """Periodic: update the Engines from the List Engines API."""
    result = _alone("sync-engines", engines_sync)
    return result.as_dict() if result is not None else None


@shared_task(ignore_result=True)
def notify_run_ended(run_id: str) -> bool:
    """Kept for the messages an earlier version queued (one per run): the reaper's pass mails now."""
    return False


@shared_task(ignore_result=True)
def notify_approvers(run_id: str) -> int:
    return approvers_notify(run_id=run_id)


@shared_task(ignore_result=True)
def follow_up_runs() -> int | None:
    """Periodic: read the device's result of runs on a platform that reports it."""
    return _alone("follow-up-runs", runs_follow_up)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def create_ticket(ticket_id: int) -> None:
    """Open a run's service desk ticket; a redelivered copy finds it claimed and does nothing."""
    from actions.ticketing.service import ticket_create, ticket_enqueue

    delay = ticket_create(ticket_id=ticket_id)
    if delay is not None:
        ticket_enqueue(ticket_id, countdown=delay)  # a broker that is down: the sweep sends it when due


@shared_task(ignore_result=True)
def sweep_tickets() -> int | None:
    """Periodic: hand to the broker the tickets that are due and whose task is not in flight."""
    from actions.ticketing.service import tickets_sweep

    return _alone("sweep-tickets", tickets_sweep)


@shared_task(ignore_result=True)
def prune_api_calls() -> int | None:
    """Periodic: delete the API call log's rows older than API_CALL_LOG_DAYS."""
    from actions.apiclients import calls_prune

    return _alone("prune-api-calls", calls_prune)
