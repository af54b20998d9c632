import json
from datetime import timedelta

from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from actions.models import Heartbeat
from portal.heartbeat import beat
from tests.conftest import BROKER_DOWN

HEARTBEAT_SECONDS = settings.HEARTBEAT_SECONDS


def test_it_reports_healthy_without_signing_in(client, db):
    beat("worker")
    beat("beat")

    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    data = response.json()
    assert (data["status"], data["checks"]) == ("ok", {"database": True, "broker": True})
    assert data["processes"]["worker"]["alive"] and data["processes"]["beat"]["alive"]


def test_a_silent_worker_makes_it_degraded_not_down(client, db):
    beat("beat")
    Heartbeat.objects.create(name="worker", seen_at=timezone.now() - timedelta(seconds=10 * HEARTBEAT_SECONDS))

    response = client.get(reverse("healthz"))

    assert response.status_code == 200  # pages still work; runs wait for a worker
    data = response.json()
    assert data["status"] == "degraded"
    assert data["processes"]["worker"] == {"alive": False, "seen_seconds_ago": 10 * HEARTBEAT_SECONDS}
    assert data["processes"]["beat"]["alive"] is True


def test_a_process_never_seen_is_not_alive(client, db):
    data = client.get(reverse("healthz")).json()

    assert data["processes"]["beat"] == {"alive": False, "seen_seconds_ago": None}


def test_it_reports_an_unreachable_broker_with_503(client, db, use_broker):
    use_broker(BROKER_DOWN)

    response = client.get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": True, "broker": False}
    assert "127.0.0.1:9" not in json.dumps(response.json())


@override_settings(ALLOWED_HOSTS=["portal.corp.example"], SECURE_SSL_REDIRECT=True)
def test_it_answers_the_load_balancers_probe_whatever_the_host(client, db):
    probe = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")
    other = client.get("/login/", HTTP_HOST="10.1.2.3:8000")

    assert probe.status_code == 200 and probe.json()["checks"]["database"] is True
    assert other.status_code == 400  # every other page still checks ALLOWED_HOSTS


@override_settings(ALLOWED_HOSTS=["portal.corp.example"])
def test_it_answers_a_head_probe_too(client, db):
    # Some load balancers probe with HEAD; the middleware lets HEAD through, so the view must too.
    probe = client.head("/healthz", HTTP_HOST="10.1.2.3:8000")

    assert probe.status_code == 200


def test_beat_writes_its_heartbeat(transactional_db, tmp_path):
    import subprocess
    import sys

    from tests.worker import ROOT, process_env, wait_for

    env = process_env()
    log = (tmp_path / "beat.log").open("w")
    beat_process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "beat", "-s", str(tmp_path / "schedule")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_for(lambda: Heartbeat.objects.filter(name="beat").exists(), timeout=30)
    finally:
        beat_process.terminate()
        beat_process.wait(timeout=20)
        log.close()
