"""A worker killed mid-call on the embedded default (SQLite, embedded broker): the run still ends.

The claim stamps `sending_at` with the database's clock; on SQLite that is millisecond text, which
a value read back and compared for equality never matched, so the reaper never decided and the run
stayed "Sending" for ever. Here the worker, not the test, writes `sending_at`.
"""

import signal

import pytest

from actions.models import Run, RunAttempt
from actions.runs.dispatch import run_dispatch
from actions.runs.reaper import runs_reap
from actions.runs.submit import run_submit
from tests.factories import make_device, make_sim_action
from tests.worker import FILESYSTEM_BROKER, Worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_run_whose_worker_is_killed_mid_call_ends_unknown(
    alice, use_simulator, inject_fault, sim_requests, settings, tmp_path
):
    inject_fault("hang", seconds=60)
    device = make_device(alice, uid="da2add909a144e8235453f88dc45172f")
    worker = Worker(use_simulator.url, tmp_path / "worker.log", broker_url=FILESYSTEM_BROKER)
    try:
        run = run_submit(user=alice, action=make_sim_action(), device=device, params={})
        wait_for(lambda: Run.objects.get(pk=run.pk).status == Run.Status.SENDING)
        wait_for(sim_requests)  # the call is in flight
    finally:
        worker.stop(signal.SIGKILL)

    # The reaper's margins shrunk for the test: the run's own timeout (5 s) is all it waits.
    settings.NEXTHINK_CONNECT_TIMEOUT_SECONDS = 0
    settings.NEXTHINK_READ_MARGIN_SECONDS = 0
    settings.RUN_SENDING_GRACE_SECONDS = 0
    wait_for(lambda: runs_reap().marked_unknown == 1, timeout=60)

    run.refresh_from_db()
    assert (run.status, run.error_code) == (Run.Status.UNKNOWN, "WORKER_LOST")
    assert run.finished_at is not None
    assert [(a.number, a.outcome) for a in RunAttempt.objects.filter(run=run)] == [(1, "worker_lost")]
    assert run_dispatch(run_id=run.pk) is None  # never resent
    assert len(sim_requests()) == 1
