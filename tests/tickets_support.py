"""Shared by the ticketing tests: a run that needs help, the ServiceNow simulator, a webhook receiver."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.utils import timezone

from actions.models import EngineResult, Run, Ticket
from actions.runs.submit import run_submit
from simulators import servicenow as sn_sim
from tests.factories import EMEA, make_device, make_parameter, make_sim_action

WEBHOOK_SECRET = "webhook-test-secret"
MAX_AGE_SECONDS = 300  # README: refuse a timestamp older (or further ahead) than five minutes


def make_run_needing_help(user, *, status=Run.Status.FAILED, fixed=None, comment="") -> Run:
    action = make_sim_action(
        slug=f"clear-teams-cache-{user.username}-{Run.objects.count()}",
        ticket_category="collaboration",
        ticket_assignment_group="Service Desk L1",
    )
    make_parameter(action, name="Mode", label="Mode")
    run = run_submit(user=user, action=action, device=make_device(user, name="LAPTOP-ALICE"), params={"Mode": "full"})
    Run.objects.filter(pk=run.pk).update(
        status=status,
        error_code="NO_ENGINE_OK" if status == Run.Status.FAILED else "",
        error_message="Your device isn't connected to Nexthink right now." if status == Run.Status.FAILED else "",
        finished_at=timezone.now(),
        fixed=fixed,
        feedback_comment=comment,
    )
    EngineResult.objects.create(
        run=run, database_uid=EMEA, engine_name="engine-emea", code="not_connected", message="Device offline"
    )
    run.refresh_from_db()
    return run


def request_ticket(run) -> Ticket:
    """What the view does, without the page: ask for the run's ticket (the task is not run)."""
    from actions.ticketing.service import ticket_request

    return ticket_request(run=run, user=run.user).ticket


@pytest.fixture(scope="session")
def servicenow_server():
    server = sn_sim.start_in_thread()
    yield server
    server.shutdown()
    server.server_close()


class ServiceNow:
    def __init__(self, url):
        self.url = url

    def incidents(self):
        return requests.get(self.url + "/_sim/incidents", timeout=5).json()

    def requests(self):
        return requests.get(self.url + "/_sim/incident_requests", timeout=5).json()

    def fault(self, fault, **options):
        requests.post(
            self.url + "/_sim/servicenow/faults", json={"fault": fault, **options}, timeout=5
        ).raise_for_status()


@pytest.fixture
def servicenow(settings, servicenow_server):
    """TICKETING=servicenow against the simulator (Basic auth), reset."""
    requests.post(servicenow_server.url + "/_sim/servicenow/reset", timeout=5).raise_for_status()
    settings.TICKETING = "servicenow"
    settings.SERVICENOW_INSTANCE_URL = servicenow_server.url
    settings.SERVICENOW_AUTH = "basic"
    settings.SERVICENOW_USERNAME = "portal"
    settings.SERVICENOW_PASSWORD = "portal-demo"
    settings.SERVICENOW_CALLER_FIELD = "email"
    settings.TICKETING_CONNECT_TIMEOUT_SECONDS = 2
    settings.TICKETING_READ_TIMEOUT_SECONDS = 5
    return ServiceNow(servicenow_server.url)


def receiver_accepts(headers, raw: bytes, secret: str = WEBHOOK_SECRET, *, now: float | None = None) -> bool:
    """What README tells a receiver to do, written here on its own (not with the portal's code):
    HMAC-SHA256 of "<X-Portal-Timestamp>.<raw body>", compared in constant time, and a timestamp at
    most MAX_AGE_SECONDS from the receiver's clock."""
    timestamp = headers.get("X-Portal-Timestamp") or ""
    if not timestamp.isdigit() or abs((time.time() if now is None else now) - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("X-Portal-Signature") or "")


class WebhookReceiver(ThreadingHTTPServer):
    """A service desk's webhook endpoint: checks the signature and timestamp, answers with a reference."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), WebhookHandler)
        self.received = []
        self.answer = {"result": {"number": "SD-1001"}}

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/tickets"


class WebhookHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        valid = receiver_accepts(self.headers, raw)
        self.server.received.append(
            {
                "body": json.loads(raw),
                "raw": raw,
                "headers": dict(self.headers),
                "valid": valid,
                "idempotency_key": self.headers.get("Idempotency-Key"),
            }
        )
        body = json.dumps(self.server.answer if valid else {"error": "bad signature"}).encode()
        self.send_response(200 if valid else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def webhook(settings):
    server = WebhookReceiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.TICKETING = "webhook"
    settings.TICKETING_WEBHOOK_URL = server.url
    settings.TICKETING_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.TICKETING_WEBHOOK_REFERENCE_FIELD = "result.number"
    yield server
    server.shutdown()
    server.server_close()
