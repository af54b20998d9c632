"""Opening a ticket in each mode, over real HTTP on loopback; one ticket per run whatever happens."""

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from actions.models import Run, Ticket
from actions.servicedesk import servicenow as servicenow_backend
from actions.tasks import create_ticket
from tests.factories import make_due
from tests.tickets_support import MAX_AGE_SECONDS, make_run_needing_help, receiver_accepts, request_ticket

State = Ticket.State


# --- ServiceNow ------------------------------------------------------------------------------------


def test_it_opens_a_servicenow_incident_with_the_runs_details(alice, servicenow, settings):
    settings.PORTAL_BASE_URL = "http://portal.test"
    run = make_run_needing_help(alice, status=Run.Status.SENT, fixed=False, comment="Teams still freezes")
    ticket = request_ticket(run)

    create_ticket(ticket.pk)

    ticket.refresh_from_db()
    assert (ticket.state, ticket.number, ticket.attempts) == (State.CREATED, "INC0010001", 1)
    [incident] = servicenow.incidents()
    assert ticket.external_id == incident["sys_id"]
    assert incident["caller_id"] == "a1" * 16  # alice@corp.example, resolved on sys_user
    assert incident["category"] == "collaboration"
    assert incident["assignment_group"] == "Service Desk L1"
    assert incident["correlation_id"] == str(run.pk)
    assert "did not fix the problem" in incident["short_description"]
    description = incident["description"]
    for fact in (
        "alice",
        "alice@corp.example",
        "LAPTOP-ALICE",
        run.device_uid,
        "Clear Teams cache",
        "Mode=full",
        "engine-emea: not_connected Device offline",
        "Teams still freezes",
        f"http://portal.test/runs/{run.pk}/",
    ):
        assert fact in description
    [request] = servicenow.requests()
    assert request["query"]["sysparm_input_display_value"] == "true"
    assert request["body"]["caller_id"] == "alice@corp.example"
    assert request["auth"] == "basic"


def test_caller_id_may_be_the_user_name(alice, servicenow, settings):
    settings.SERVICENOW_CALLER_FIELD = "username"
    ticket = request_ticket(make_run_needing_help(alice))
    create_ticket(ticket.pk)
    assert servicenow.requests()[0]["body"]["caller_id"] == "alice"
    assert servicenow.incidents()[0]["caller_id"] == "a1" * 16


def test_a_redelivered_task_opens_no_second_incident(alice, servicenow):
    ticket = request_ticket(make_run_needing_help(alice))

    create_ticket(ticket.pk)
    create_ticket(ticket.pk)

    assert len(servicenow.incidents()) == 1
    assert len(servicenow.requests()) == 1
    ticket.refresh_from_db()
    assert (ticket.state, ticket.attempts) == (State.CREATED, 1)


def test_after_a_dropped_answer_it_finds_the_incident_instead_of_opening_a_second(alice, servicenow):
    ticket = request_ticket(make_run_needing_help(alice))
    servicenow.fault("drop")  # the incident is made, the answer never comes

    create_ticket(ticket.pk)
    ticket.refresh_from_db()
    assert (ticket.state, ticket.uncertain) == (State.REQUESTED, True)
    assert "dropped" in ticket.error
    create_ticket(ticket.pk)  # a redelivery before the retry is due: nothing
    assert len(servicenow.requests()) == 1

    make_due(ticket)
    create_ticket(ticket.pk)

    ticket.refresh_from_db()
    assert (ticket.state, ticket.number, ticket.attempts) == (State.CREATED, "INC0010001", 2)
    assert len(servicenow.incidents()) == 1
    post, get = servicenow.requests()
    assert (post["method"], get["method"]) == ("POST", "GET")
    assert get["query"]["sysparm_query"] == f"correlation_id={ticket.run_id}"


def test_after_a_server_error_that_made_nothing_it_looks_up_then_opens_one(alice, servicenow):
    ticket = request_ticket(make_run_needing_help(alice))
    servicenow.fault("500", create=False)

    create_ticket(ticket.pk)
    make_due(ticket)
    create_ticket(ticket.pk)

    ticket.refresh_from_db()
    assert (ticket.state, ticket.number) == (State.CREATED, "INC0010001")
    assert [r["method"] for r in servicenow.requests()] == ["POST", "GET", "POST"]
    assert len(servicenow.incidents()) == 1


def test_a_worker_lost_while_sending_makes_the_next_one_look_up_first(alice, servicenow):
    ticket = request_ticket(make_run_needing_help(alice))
    Ticket.objects.filter(pk=ticket.pk).update(
        state=State.SENDING, attempts=1, claimed_at=timezone.now() - timedelta(hours=1)
    )

    create_ticket(ticket.pk)

    ticket.refresh_from_db()
    assert (ticket.state, ticket.attempts) == (State.CREATED, 2)
    assert [r["method"] for r in servicenow.requests()] == ["GET", "POST"]


def test_it_gives_up_after_the_last_attempt_with_a_clear_message(alice, servicenow, settings):
    settings.TICKETING_MAX_ATTEMPTS = 2
    settings.SERVICENOW_INSTANCE_URL = "http://127.0.0.1:9"  # nothing listens: refused at once
    ticket = request_ticket(make_run_needing_help(alice))

    create_ticket(ticket.pk)
    ticket.refresh_from_db()
    assert ticket.state == State.REQUESTED
    make_due(ticket)
    create_ticket(ticket.pk)

    ticket.refresh_from_db()
    assert ticket.state == State.FAILED
    assert ticket.error == "ServiceNow: could not connect. The portal tried 2 times."
    assert ticket.uncertain is False


def test_it_gives_up_past_the_deadline_without_calling(alice, servicenow):
    ticket = request_ticket(make_run_needing_help(alice))
    Ticket.objects.filter(pk=ticket.pk).update(requested_at=timezone.now() - timedelta(days=1))

    create_ticket(ticket.pk)

    ticket.refresh_from_db()
    assert ticket.state == State.FAILED
    assert "could not send the request to the service desk in time" in ticket.error
    assert servicenow.requests() == []


def test_refused_credentials_fail_at_once(alice, servicenow, settings):
    settings.SERVICENOW_PASSWORD = "wrong"
    ticket = request_ticket(make_run_needing_help(alice))

    create_ticket(ticket.pk)

    ticket.refresh_from_db()
    assert (ticket.state, ticket.attempts) == (State.FAILED, 1)
    assert ticket.error == "ServiceNow: the portal's credentials were refused (HTTP 401)."


def test_it_signs_in_with_oauth_client_credentials(alice, servicenow, settings):
    settings.SERVICENOW_AUTH = "oauth"
    settings.SERVICENOW_TOKEN_URL = servicenow.url + "/oauth_token.do"
    settings.SERVICENOW_CLIENT_ID = "portal-client"
    settings.SERVICENOW_CLIENT_SECRET = "portal-client-secret"
    servicenow_backend._token.clear()
    ticket = request_ticket(make_run_needing_help(alice))

    create_ticket(ticket.pk)

    ticket.refresh_from_db()
    assert ticket.state == State.CREATED
    assert servicenow.requests()[0]["auth"] == "bearer"
    servicenow_backend._token.clear()


# --- Webhook ---------------------------------------------------------------------------------------


def test_the_webhook_gets_a_signed_body_and_its_reference_is_kept(alice, webhook, settings):
    settings.PORTAL_BASE_URL = "http://portal.test"
    run = make_run_needing_help(alice, status=Run.Status.UNKNOWN)
    ticket = request_ticket(run)

    create_ticket(ticket.pk)
    create_ticket(ticket.pk)  # redelivered

    ticket.refresh_from_db()
    assert (ticket.state, ticket.number) == (State.CREATED, "SD-1001")
    [received] = webhook.received
    assert received["valid"] is True
    assert received["idempotency_key"] == str(run.pk)
    body = received["body"]
    assert (body["event"], body["id"], body["attempt"]) == ("ticket.requested", str(run.pk), 1)
    assert body["employee"] == {"name": "", "username": "alice", "email": "alice@corp.example"}
    assert body["device"] == {"name": "LAPTOP-ALICE", "uid": run.device_uid}
    assert body["action"]["parameters"] == {"Mode": "full"}
    assert body["run"]["status"] == "unknown"
    assert body["run"]["url"] == f"http://portal.test/runs/{run.pk}/"
    assert body["run"]["engine_results"][0]["code"] == "not_connected"
    assert body["category"] == "collaboration"


def test_the_webhook_signs_a_timestamp_with_the_body_so_an_old_request_cannot_be_replayed(alice, webhook):
    ticket = request_ticket(make_run_needing_help(alice))
    before = int(time.time())

    create_ticket(ticket.pk)

    [received] = webhook.received
    headers, raw = received["headers"], received["raw"]
    timestamp = int(headers["X-Portal-Timestamp"])
    assert before <= timestamp <= int(time.time())
    assert received["valid"] is True
    # The timestamp is inside the signature: the same body and signature with another time fail...
    later = dict(headers, **{"X-Portal-Timestamp": str(timestamp + 3600)})
    assert not receiver_accepts(later, raw, now=timestamp + 3600)
    # ...the body too...
    tampered = raw.replace(b'"attempt":1', b'"attempt":2')
    assert tampered != raw and not receiver_accepts(headers, tampered, now=timestamp)
    # ...and the very request, recorded and played again later, is refused as old.
    assert receiver_accepts(headers, raw, now=timestamp + MAX_AGE_SECONDS)
    assert not receiver_accepts(headers, raw, now=timestamp + MAX_AGE_SECONDS + 1)


def test_a_wrong_webhook_secret_is_refused_and_fails(alice, webhook, settings):
    settings.TICKETING_WEBHOOK_SECRET = "not-the-receivers-secret"
    ticket = request_ticket(make_run_needing_help(alice))

    create_ticket(ticket.pk)

    ticket.refresh_from_db()
    assert ticket.state == State.FAILED
    assert webhook.received[0]["valid"] is False


def test_an_answer_without_the_reference_field_is_retried_not_taken(alice, webhook):
    webhook.answer = {"ok": True}
    ticket = request_ticket(make_run_needing_help(alice))

    create_ticket(ticket.pk)

    ticket.refresh_from_db()
    assert (ticket.state, ticket.uncertain, ticket.number) == (State.REQUESTED, True, "")
    assert "'result.number'" in ticket.error


# --- E-mail ----------------------------------------------------------------------------------------


@pytest.fixture
def email_desk(settings):
    settings.TICKETING = "email"
    settings.TICKETING_EMAIL_TO = ["servicedesk@corp.example"]
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


def test_the_email_mode_sends_one_message_with_the_runs_details(alice, email_desk):
    run = make_run_needing_help(alice, status=Run.Status.SENT, fixed=False, comment="Still broken")
    ticket = request_ticket(run)

    create_ticket(ticket.pk)
    create_ticket(ticket.pk)

    ticket.refresh_from_db()
    reference = "FMD-" + run.pk.hex[:8].upper()
    assert (ticket.state, ticket.number) == (State.CREATED, reference)
    [message] = mail.outbox
    assert message.to == ["servicedesk@corp.example"]
    assert message.reply_to == ["alice@corp.example"]
    assert message.subject.startswith(f"[{reference}] Clear Teams cache on LAPTOP-ALICE")
    assert "Still broken" in message.body and "Mode=full" in message.body


def test_the_act_api_simulator_also_serves_the_servicenow_api_for_the_demo(alice, servicenow, settings, simulator):
    import requests

    requests.post(simulator.url + "/_sim/servicenow/reset", timeout=5).raise_for_status()
    settings.SERVICENOW_INSTANCE_URL = simulator.url
    ticket = request_ticket(make_run_needing_help(alice))

    create_ticket(ticket.pk)

    ticket.refresh_from_db()
    assert (ticket.state, ticket.number) == (State.CREATED, "INC0010001")
    assert len(requests.get(simulator.url + "/_sim/incidents", timeout=5).json()) == 1


def test_a_service_desk_that_trickles_its_answer_is_given_up_before_the_sweep_would_resend(settings):
    """Each byte comes within the read timeout, the whole answer never: the call's own deadline ends it,
    as unknown (the ticket may have been opened), so no worker outlives stale_after()."""
    import socket
    import threading
    import time

    from actions.servicedesk import http as desk_http
    from actions.servicedesk.base import ErrorKind, TicketError

    settings.TICKETING_CONNECT_TIMEOUT_SECONDS = 1
    settings.TICKETING_READ_TIMEOUT_SECONDS = 1
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def trickle():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n")
            try:
                for _ in range(60):  # 30 s for the whole body, one byte every half second
                    conn.sendall(b" ")
                    time.sleep(0.5)
            except OSError:
                pass  # the client gave up: expected

    server = threading.Thread(target=trickle, daemon=True)
    server.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/api/now/table/incident"

    with pytest.raises(TicketError) as raised:
        desk_http.send(desk_http.session(), "POST", url, what="ServiceNow", json={})

    assert raised.value.kind is ErrorKind.UNKNOWN and "no complete answer" in raised.value.message
    listener.close()
