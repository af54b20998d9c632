"""Several machines, one portal: two web processes (separate local caches, as on two hosts), two workers
and two beats on one PostgreSQL and one Redis, each started through deploy/entrypoint.sh as the image does.

Needs PostgreSQL (CI's second run, DATABASE_URL=postgres://...) and the Redis server (REDIS_URL, flushed):
skipped with the reason without them; under CI=true a missing Redis fails.
"""

import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from django.db import connection

from actions.models import Run
from actions.runs.states import is_final
from tests.conftest import REDIS_URL
from tests.factories import ALICE_LAPTOP, EMEA, make_laptop, make_sim_action
from tests.servers import free_port
from tests.worker import ROOT, process_env, simulator_env, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
EXPLORER = uuid.UUID("6c1e8f2a-3b4d-4e5f-9a0b-1c2d3e4f5a60")  # another action the simulator knows


class Machine:
    """One process of the entry point (`mode`), in a var folder of its own, as on a host of its own."""

    def __init__(self, mode: str, folder: Path, env: dict[str, str], *args: str):
        folder.mkdir()
        self.mode, self.log_path = mode, folder / f"{mode}.log"
        self.env = process_env(env | {"PORTAL_VAR_DIR": str(folder), "PYTHON": sys.executable})
        self.port = self.env.get("PORT")
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [str(ENTRYPOINT), mode, *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text()

    def healthy(self) -> bool:
        """The image's health check (`entrypoint.sh health <mode>`)."""
        if self.process.poll() is not None:
            raise AssertionError(f"{self.mode} exited:\n{self.log()}")
        check = subprocess.run(
            [str(ENTRYPOINT), "health", self.mode], cwd=ROOT, env=self.env, stderr=subprocess.DEVNULL
        )
        return check.returncode == 0

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def machines(redis_broker, use_simulator, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("several machines share one PostgreSQL: CI's second run (DATABASE_URL=postgres://...)")
    env = simulator_env(use_simulator.url) | {
        "CELERY_BROKER_URL": REDIS_URL,
        "RUN_RATE_LIMIT_COUNT": "2",  # fair use: two runs per employee per window
        "BEAT_LEADER_SECONDS": "3",
        "LOG_LEVEL": "INFO",  # beat says what it sends
        "WEB_CONCURRENCY": "1",
        "WEB_THREADS": "2",
        "CELERY_WORKER_CONCURRENCY": "2",
        "DATABASE_POOL_MAX_SIZE": "3",
    }
    started = {}
    try:
        for name, mode in [("web_a", "web"), ("web_b", "web"), ("worker_a", "worker"), ("worker_b", "worker")]:
            started[name] = Machine(mode, tmp_path / name, env | {"PORT": str(free_port())})
        for name in ("beat_a", "beat_b"):
            started[name] = Machine("beat", tmp_path / name, env)
        for machine in started.values():
            wait_for(machine.healthy, timeout=60)
        yield started
    finally:
        for machine in started.values():
            machine.stop()


def hidden(page: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', page).group(1)


def run_form_post(session: requests.Session, web: Machine, action) -> requests.Response:
    """The action page's form, as the browser fetches and sends it, on that web process."""
    page = session.get(f"{web.url}{action.get_absolute_url()}", timeout=30).text
    form = {"device": ALICE_LAPTOP, "idempotency_key": hidden(page, "idempotency_key")}
    return session.post(
        f"{web.url}{action.get_absolute_url()}",
        form | {"csrfmiddlewaretoken": hidden(page, "csrfmiddlewaretoken")},
        allow_redirects=False,
        timeout=30,
    )


def test_two_webs_two_workers_and_two_beats_make_one_portal(machines, alice, sim_requests):
    web_a, web_b = machines["web_a"], machines["web_b"]
    make_laptop(alice)
    cooled = make_sim_action(slug="clear-teams-cache", cooldown_minutes=60)
    other = make_sim_action(name="Restart Windows Explorer", slug="restart-explorer", nexthink_uid=EXPLORER)
    other.engines.add(cooled.engines.create(database_uid=EMEA, name="engine-emea"))

    # Signed in on one web process, the employee is signed in on the other.
    session = requests.Session()
    login = session.get(f"{web_a.url}/login/", timeout=30).text
    signed_in = session.post(
        f"{web_a.url}/login/",
        {"username": "alice", "password": "alice-pass", "csrfmiddlewaretoken": hidden(login, "csrfmiddlewaretoken")},
        timeout=30,
    )
    assert signed_in.url == f"{web_a.url}/"
    for web in (web_a, web_b):
        for _ in range(2):  # the second view comes from the process's own cache
            page = session.get(f"{web.url}/", timeout=30)
            assert page.url == f"{web.url}/" and "Clear Teams cache" in page.text

    # A curator's change shows on both at the next view.
    cooled.name = "Clear the Teams cache"
    cooled.save()
    for web in (web_a, web_b):
        assert "Clear the Teams cache" in session.get(f"{web.url}/", timeout=30).text

    # The cooldown and fair use hold across both: the database decides, not a process.
    assert run_form_post(session, web_a, cooled).status_code == 302
    refused = run_form_post(session, web_b, cooled)
    assert refused.status_code == 200 and "ran on LAPTOP-ALICE recently" in refused.text
    assert run_form_post(session, web_b, other).status_code == 302
    refused = run_form_post(session, web_a, other)
    assert refused.status_code == 200 and "You have started 2 runs" in refused.text
    assert Run.objects.count() == 2
    wait_for(lambda: all(is_final(status) for status in Run.objects.values_list("status", flat=True)), timeout=60)
    assert set(Run.objects.values_list("status", flat=True)) == {Run.Status.SENT}
    assert len(sim_requests()) == 2  # each run sent once, by one of the two workers

    # One beat schedules; the other stands by, and takes over when the leader dies.
    beats = [machines["beat_a"], machines["beat_b"]]
    leader = wait_for(lambda: next((b for b in beats if b.log().count("Sending due task reap-runs") >= 2), None))
    [standby] = [b for b in beats if b is not leader]
    assert "Sending due task" not in standby.log()
    leader.stop(signal.SIGKILL)  # no goodbye: its lock must expire
    wait_for(lambda: "Sending due task reap-runs" in standby.log(), timeout=60)
