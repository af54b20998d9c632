"""Thin Celery tasks: take an id, call one service."""

from celery import shared_task

from actions import services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def dispatch_run(run_id: str) -> str | None:
    result = services.run_dispatch(run_id=run_id)
    if result and result.retry_in is not None:
        services.run_enqueue(run_id=run_id, countdown=result.retry_in)
    return result.status if result else None


@shared_task(ignore_result=True)
def reap_runs() -> dict:
    report = services.runs_reap()
    return {"requeued": report.requeued, "marked_unknown": report.marked_unknown}


@shared_task(ignore_result=True)
def sync_engines_task() -> dict:
    """Periodic: update the Engines from the List Engines API (see actions.devices.engines_sync)."""
    from actions.devices import engines_sync

    return engines_sync().as_dict()
