"""A Redis restart under a real worker: a run in flight and a retry pending both end, nothing is sent twice.

The test starts its own redis-server on a free port (never the machine's shared one), kills it while
the worker holds unacknowledged messages, and starts it again on the same port: once a Redis that
loses everything in a restart, once one that keeps its data (an append-only file, as production
Redis usually does), where what the worker left unacknowledged is still there afterwards.
"""

import base64
import json
import re
import time

import pytest
import redis
import requests

from actions.models import Heartbeat, Run
from actions.runs.reaper import runs_reap
from actions.runs.submit import run_submit
from tests.factories import EMEA, make_device, make_sim_action
from tests.servers import REDIS_SERVER, OwnRedis
from tests.worker import Beat, Worker, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=[False, True], ids=["redis-loses-its-data", "redis-keeps-its-data"])
def own_redis(request, tmp_path):
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = OwnRedis(tmp_path, keeps_data=request.param)
    server.start()
    yield server
    server.kill()


def test_a_redis_restart_does_not_stop_the_worker(
    alice, own_redis, use_broker, use_simulator, inject_fault, sim_requests, tmp_path, settings
):
    broker = f"redis://127.0.0.1:{own_redis.port}/0"
    action = make_sim_action()
    action.engines.create(database_uid=EMEA, name="engine-emea")
    device = make_device(alice, uid="da2add909a144e8235453f88dc45172f")
    inject_fault("latency", seconds=4)  # the first run: in flight while Redis restarts
    worker = Worker(use_simulator.url, tmp_path / "worker.log", broker_url=broker)
    try:
        use_broker(broker)
        in_flight = run_submit(user=alice, action=action, device=device, params={})
        wait_for(lambda: Run.objects.get(pk=in_flight.pk).status == Run.Status.SENDING)
        inject_fault("html_503", times=1)  # the second run: refused once, so a retry waits on its countdown
        retried = run_submit(user=alice, action=action, device=make_device(alice), params={})
        wait_for(lambda: Run.objects.get(pk=retried.pk).status == Run.Status.RETRYING)

        own_redis.kill()
        time.sleep(2)
        own_redis.start()

        def both_sent() -> bool:
            runs_reap()  # what beat does every minute: a retry whose message Redis lost is sent again
            return Run.objects.filter(pk__in=[in_flight.pk, retried.pk], status=Run.Status.SENT).count() == 2

        final = wait_for(both_sent, timeout=60)
    finally:
        log = (tmp_path / "worker.log").read_text() if (tmp_path / "worker.log").exists() else ""
        worker.stop()
        print(log)  # shown when the test fails
    assert final
    assert Heartbeat.objects.filter(name="worker").exists()  # /healthz sees the worker alive
    assert worker.process.returncode in (0, -15)  # it kept running until asked to stop
    assert "Unrecoverable error" not in log
    # The run in flight was acknowledged once Redis was back: Redis keeps no copy of it to hand out
    # again after the visibility timeout (kombu alone failed here: "Couldn't ack"). The retry's
    # countdown message may arrive just as Redis goes away; whether that one is acknowledged is
    # timing, and harmless: a second copy finds its run claimed.
    in_flight_task = re.search(r"Task actions\.tasks\.dispatch_run\[([^\]]+)\] received", log).group(1)
    assert f"Couldn't ack '{in_flight_task}'" not in log
    assert str(in_flight.pk) not in unacknowledged_run_ids(broker)
    sent = [r["body"]["requestUid"] for r in sim_requests()]
    assert sent.count(str(in_flight.pk)) == 1
    assert sent.count(str(retried.pk)) == 2  # refused once (nothing accepted), then sent once
    requests.post(use_simulator.url + "/_sim/reset", timeout=5)


def unacknowledged_run_ids(broker: str) -> list[str]:
    """The run ids of the dispatch messages in kombu's unacknowledged set in Redis."""
    client = redis.Redis.from_url(broker, socket_connect_timeout=2)
    run_ids = []
    for raw in client.hvals("unacked"):
        message = json.loads(raw)[0]
        if message["headers"]["task"] == "actions.tasks.dispatch_run":
            run_ids.append(json.loads(base64.b64decode(message["body"]))[0][0])
    return run_ids


@pytest.fixture
def forgetful_redis(tmp_path):
    """A redis-server of this test's own that loses everything when it stops."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.kill()


def test_runs_wait_out_a_redis_outage_and_go_out_once_when_it_is_back(
    alice, forgetful_redis, use_broker, use_simulator, sim_requests, tmp_path
):
    """Nothing in the test calls the reaper: beat and the worker, as deployed, send both runs."""
    broker = f"redis://127.0.0.1:{forgetful_redis.port}/0"
    use_broker(broker)
    action = make_sim_action()
    action.engines.create(database_uid=EMEA, name="engine-emea")
    beat = Beat(use_simulator.url, tmp_path / "beat.log", broker_url=broker)
    worker = None
    try:
        # A run handed to Redis with no worker to take it, then lost in a restart.
        handed = run_submit(user=alice, action=action, device=make_device(alice), params={})
        assert handed.enqueued is True
        forgetful_redis.kill()
        forgetful_redis.start()
        worker = Worker(use_simulator.url, tmp_path / "worker.log", broker_url=broker)

        forgetful_redis.kill()  # with the worker and beat running
        during = run_submit(user=alice, action=action, device=make_device(alice), params={})
        assert during.enqueued is False  # stored all the same: the database is the truth
        assert Run.objects.get(pk=during.pk).enqueued_at is None
        forgetful_redis.start()

        wait_for(lambda: Run.objects.filter(pk__in=[handed.pk, during.pk], status=Run.Status.SENT).count() == 2, 120)
    finally:
        if worker:
            worker.stop()
        beat.stop()
        print((tmp_path / "beat.log").read_text())

    sent = [r["body"]["requestUid"] for r in sim_requests()]
    assert sorted(sent) == sorted([str(handed.pk), str(during.pk)])  # each once
    assert worker.process.returncode in (0, -15) and beat.process.returncode in (0, -15)  # both lived through it
