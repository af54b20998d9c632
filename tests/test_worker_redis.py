"""The full path with real parts: form POST → Redis → Celery worker → simulator over HTTP → stored → shown.

Needs the Redis server on 127.0.0.1:6379 (database 15 is used and flushed). Skipped with a reason
when Redis is unreachable, except under CI=true, where that is a failure.
"""

import signal
import time
from datetime import timedelta

import pytest
from django.urls import reverse

from actions.models import Run
from actions.runs.reaper import runs_reap
from actions.runs.states import is_final
from actions.runs.submit import run_submit
from tests.conftest import REDIS_URL, redis_or_skip
from tests.factories import EMEA, make_device, make_parameter, make_sim_action
from tests.worker import Worker, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(redis_broker, use_simulator, tmp_path):
    started = Worker(use_simulator.url, tmp_path / "worker.log", broker_url=REDIS_URL)
    yield started
    started.stop()


def test_a_form_post_travels_through_redis_and_a_worker_to_nexthink_and_back(client, alice, worker, sim_requests):
    action = make_sim_action(slug="clear-teams-cache")
    action.engines.create(database_uid=EMEA, name="engine-emea")
    make_parameter(action, name="Mode", label="Mode", required=True)
    device = make_device(alice, uid="da2add909a144e8235453f88dc45172f", name="LAPTOP-ALICE")
    client.force_login(alice)
    form = client.get(reverse("action_detail", args=[action.slug])).context["form"]

    response = client.post(
        reverse("action_detail", args=[action.slug]),
        {"device": device.uid, "param_Mode": "full", "idempotency_key": form["idempotency_key"].value()},
    )

    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    wait_for(lambda: is_final(Run.objects.get(pk=run.pk).status))
    run.refresh_from_db()
    assert run.status == Run.Status.SENT
    assert [(r.engine_name, r.code) for r in run.engine_results.all()] == [("engine-emea", "ok")]
    [sent] = sim_requests()
    assert sent["body"]["requestUid"] == str(run.pk) and sent["body"]["params"] == {"Mode": "full"}
    page = client.get(run.get_absolute_url()).content.decode()
    assert "Sent" in page and "engine-emea" in page


def test_a_killed_worker_leaves_the_run_unknown_and_it_is_never_resent(
    alice, redis_broker, use_simulator, inject_fault, sim_requests, tmp_path
):
    inject_fault("hang", seconds=30)
    device = make_device(alice, uid="da2add909a144e8235453f88dc45172f")
    first = Worker(use_simulator.url, tmp_path / "first.log", broker_url=REDIS_URL)
    run = run_submit(user=alice, action=make_sim_action(), device=device, params={})
    wait_for(lambda: Run.objects.get(pk=run.pk).status == Run.Status.SENDING)

    first.stop(signal.SIGKILL)  # mid-call: the task was never acknowledged
    unacked = redis_or_skip().zrange("unacked_index", 0, -1, withscores=True)  # kombu's: delivery time by tag
    assert unacked
    delivered_at = min(score for _tag, score in unacked)
    # The second worker looks for unacknowledged messages as it starts: this one must be older than its
    # visibility timeout by then.
    wait_for(lambda: time.time() - delivered_at > 1.5)
    second = Worker(
        use_simulator.url,
        tmp_path / "second.log",
        broker_url=REDIS_URL,
        extra_env={"REDIS_VISIBILITY_TIMEOUT_SECONDS": "1"},
    )
    try:
        # Redis gives the task back; the second worker takes it and finds the run already claimed.
        wait_for(lambda: f"run {run.pk} not moved to sending" in second.log_path.read_text())
        sending_at = Run.objects.get(pk=run.pk).sending_at
        Run.objects.filter(pk=run.pk).update(sending_at=sending_at - timedelta(seconds=run.timeout_seconds + 3600))
        report = runs_reap()
    finally:
        second.stop()

    run.refresh_from_db()
    assert report.marked_unknown == 1
    assert (run.status, run.error_code) == (Run.Status.UNKNOWN, "WORKER_LOST")
    assert len(sim_requests()) == 1
