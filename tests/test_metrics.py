"""IT sees the portal work: /metrics for Prometheus, behind its token, and log lines with their ids."""

import io
import json
import logging
import os
import re
import subprocess
import sys

import pytest
import yaml
from prometheus_client import REGISTRY

from actions.models import Run
from actions.runs.states import is_final
from actions.tasks import dispatch_run
from portal.logcontext import ContextFilter, JsonFormatter
from tests.factories import ALICE_LAPTOP, FORM_KEY
from tests.worker import FILESYSTEM_BROKER, ROOT, Worker, wait_for

TOKEN = "scrape-me-please"
ACTION = "Clear Teams cache"


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


@pytest.fixture
def json_lines():
    """The portal's log lines as LOG_FORMAT=json writes them (the settings' filter and formatter)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("actions")
    logger.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)


def submit_and_dispatch(client, action, capture, headers=None) -> Run:
    """The real path: the action page's form, then the worker's task against the simulator."""
    with capture(execute=True):
        form = {"device": ALICE_LAPTOP, "idempotency_key": FORM_KEY, "Mode": "full"}
        response = client.post(action.get_absolute_url(), form, headers=headers or {})
        assert response.status_code == 302
        run = Run.objects.get()
        dispatch_run.apply(args=[str(run.pk)])
    run.refresh_from_db()
    return run


def test_a_run_moves_the_counters_it_should(
    alice_client, emea_action, laptop, use_simulator, metrics_token, django_capture_on_commit_callbacks
):
    labels = {"action": ACTION, "platform": "classic"}
    before = {
        "submitted": sample("portal_runs_submitted_total", **labels),
        "ended": sample("portal_runs_ended_total", outcome="sent", **labels),
        "to_sent": sample("portal_run_submit_to_sent_seconds_count", platform="classic"),
        "to_final": sample("portal_run_submit_to_final_seconds_count", platform="classic", outcome="sent"),
        "calls": sample("portal_nexthink_call_seconds_count", platform="classic", endpoint="/api/remoteaction/v2/run"),
        "waits": sample("portal_broker_queue_wait_seconds_count", queue="runs"),
    }

    run = submit_and_dispatch(alice_client, emea_action, django_capture_on_commit_callbacks)

    assert run.status == Run.Status.SENT
    after = {
        "submitted": sample("portal_runs_submitted_total", **labels),
        "ended": sample("portal_runs_ended_total", outcome="sent", **labels),
        "to_sent": sample("portal_run_submit_to_sent_seconds_count", platform="classic"),
        "to_final": sample("portal_run_submit_to_final_seconds_count", platform="classic", outcome="sent"),
        "calls": sample("portal_nexthink_call_seconds_count", platform="classic", endpoint="/api/remoteaction/v2/run"),
        "waits": sample("portal_broker_queue_wait_seconds_count", queue="runs"),
    }
    assert {key: after[key] - before[key] for key in before} == dict.fromkeys(before, 1.0)

    # Prometheus reads them, and the state read at scrape time, from /metrics.
    page = alice_client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).content.decode()
    assert f'portal_runs_ended_total{{action="{ACTION}",outcome="sent",platform="classic"}}' in page
    assert 'portal_runs_in_flight{status="queued"} 0.0' in page
    assert 'portal_broker_waiting_messages{queue="celery"}' in page


def test_a_nexthink_error_is_counted_by_kind(
    alice_client, action, laptop, use_simulator, inject_fault, django_capture_on_commit_callbacks
):
    endpoint = {"platform": "classic", "endpoint": "/api/remoteaction/v2/run"}
    before = sample("portal_nexthink_errors_total", kind="unknown", **endpoint)
    inject_fault("internal_error")

    run = submit_and_dispatch(alice_client, action, django_capture_on_commit_callbacks)

    assert run.status == Run.Status.UNKNOWN
    assert sample("portal_nexthink_errors_total", kind="unknown", **endpoint) - before == 1.0
    assert sample("portal_nexthink_errors_total", kind="retryable", **endpoint) == 0.0


def test_metrics_are_not_there_without_a_token(client, db, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_metrics_need_the_token(client, db, metrics_token):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": TOKEN}).status_code == 401  # no scheme
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


def exposition_of(folder) -> str:
    """What /metrics of a process of the host whose processes share `folder` shows of their counters."""
    show = "from actions import metrics; print(metrics.exposition()[0].decode())"
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(folder)}
    return subprocess.run(
        [sys.executable, "-c", show], cwd=ROOT, env=env, check=True, timeout=60, capture_output=True, text=True
    ).stdout


def test_it_adds_up_the_processes_of_one_host(tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR, what two processes counted shows in a third one's /metrics text."""
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = "from actions import metrics; metrics.run_submitted(action='Repair VPN', platform='classic')"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], cwd=ROOT, env=env, check=True, timeout=60)

    assert 'portal_runs_submitted_total{action="Repair VPN",platform="classic"} 2.0' in exposition_of(tmp_path)


@pytest.mark.django_db(transaction=True)
def test_a_worker_process_logs_the_request_and_the_run_and_its_host_counts_them(
    alice_client, emea_action, laptop, broker_queue, use_simulator, tmp_path, json_lines
):
    """The real processes: the request's id crosses the broker, the worker's counters reach the host's /metrics."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    log = tmp_path / "worker.log"
    extra = {"LOG_FORMAT": "json", "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    worker = Worker(use_simulator.url, log, broker_url=FILESYSTEM_BROKER, extra_env=extra)
    try:
        form = {"device": ALICE_LAPTOP, "idempotency_key": FORM_KEY, "Mode": "full"}
        alice_client.post(emea_action.get_absolute_url(), form, headers={"X-Request-ID": "lb-7f3a9c2e41d8"})
        run = Run.objects.get()
        wait_for(lambda: is_final(Run.objects.get(pk=run.pk).status), timeout=60)
    finally:
        worker.stop()

    # The web side's line names the run (its message starts "run <id>"); the worker's call to Nexthink
    # does not: its task bound the run's id, and the request's id came with the task's message.
    queued = next(line for line in json_lines() if line["message"].startswith(f"run {run.pk} queued"))
    assert (queued["request_id"], queued["run_id"]) == ("lb-7f3a9c2e41d8", str(run.pk))
    assert {"time", "level", "logger"} <= set(queued)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    [call] = [line for line in lines if line["message"].startswith("Nexthink POST")]
    assert (call["request_id"], call["run_id"]) == ("lb-7f3a9c2e41d8", str(run.pk))
    ended = f'portal_runs_ended_total{{action="{ACTION}",outcome="sent",platform="classic"}} 1.0'
    assert ended in exposition_of(folder)


def test_the_answer_names_the_request(client, db):
    offered = client.get("/login/", headers={"X-Request-ID": "lb-7f3a9c2e41d8"})
    assert offered["X-Request-ID"] == "lb-7f3a9c2e41d8"
    made_up = client.get("/login/", headers={"X-Request-ID": "no spaces or newlines\n"})
    assert made_up["X-Request-ID"] != "no spaces or newlines\n" and len(made_up["X-Request-ID"]) == 32


def test_the_dashboard_and_the_alerts_use_metrics_the_portal_exports(client, db, metrics_token):
    page = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).content.decode()
    families = {line.split()[2] for line in page.splitlines() if line.startswith("# TYPE portal_")}
    exported = {family + suffix for family in families for suffix in ("", "_total", "_bucket", "_count", "_sum")}
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    dashboard = json.loads((ROOT / "deploy/grafana/fix-my-device.json").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]

    used = {name for expr in expressions for name in re.findall(r"\bportal_[a-z_]+", expr)}

    assert len(expressions) > 20 and len(used) > 10
    assert used - exported == set()


def test_password_failures_and_lock_outs_are_counted(client, alice, settings):
    settings.LOCAL_LOGIN = True
    settings.AXES_FAILURE_LIMIT = settings.LOGIN_FAILURE_LIMIT = 2
    failures, lockouts = (
        sample("portal_sign_in_failures_total"),
        sample("portal_sign_in_events_total", event="local_login_locked_out"),
    )

    for _ in range(2):  # the second failure reaches the limit: locked out
        client.post("/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.1.1.1")

    assert sample("portal_sign_in_failures_total") - failures == 2.0
    assert sample("portal_sign_in_events_total", event="local_login_locked_out") - lockouts == 1.0
