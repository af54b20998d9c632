"""Thin Celery tasks: take an id, call one service."""

from celery import shared_task

from actions.devices.engines import engines_sync
from actions.runs.dispatch import run_dispatch, run_enqueue
from actions.runs.follow_up import runs_follow_up
from actions.runs.notify import approvers_notify, run_notify
from actions.runs.reaper import runs_reap


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def dispatch_run(run_id: str) -> str | None:
    outcome = run_dispatch(run_id=run_id)
    if outcome and outcome.retried:
        run_enqueue(run_id=run_id, countdown=outcome.retry_in)
    return outcome.status if outcome else None


@shared_task(ignore_result=True)
def reap_runs() -> dict:
    report = runs_reap()
    return {
        "requeued": report.requeued,
        "marked_unknown": report.marked_unknown,
        "expired": report.expired,
        "unread": report.unread,
    }


@shared_task(ignore_result=True)
def sync_engines_task() -> dict:
    """Periodic: update the Engines from the List Engines API."""
    return engines_sync().as_dict()


@shared_task(ignore_result=True)
def notify_run_ended(run_id: str) -> bool:
    return run_notify(run_id=run_id)


@shared_task(ignore_result=True)
def notify_approvers(run_id: str) -> int:
    return approvers_notify(run_id=run_id)


@shared_task(ignore_result=True)
def follow_up_runs() -> int:
    """Periodic: read the device's result of runs on a platform that reports it."""
    return runs_follow_up()


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def create_ticket(ticket_id: int) -> None:
    """Open a run's service desk ticket; a redelivered copy finds it claimed and does nothing."""
    from actions.ticketing.service import ticket_create, ticket_enqueue

    delay = ticket_create(ticket_id=ticket_id)
    if delay is not None:
        ticket_enqueue(ticket_id, countdown=delay)  # a broker that is down: the sweep sends it when due


@shared_task(ignore_result=True)
def sweep_tickets() -> int:
    """Periodic: hand to the broker the tickets that are due and whose task is not in flight."""
    from actions.ticketing.service import tickets_sweep

    return tickets_sweep()
