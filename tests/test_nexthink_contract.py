"""The Act API v2 client against the simulator, over real HTTP on loopback. Nothing is patched."""

import base64
import json
import logging
import socket
import struct
import threading
from datetime import UTC, datetime, timedelta

import pytest

from actions.nexthink.classic.client import ActClient, EngineCode
from actions.nexthink.errors import ActApiError, ErrorKind, what_happened
from simulators import act_api as sim
from tests.conftest import add_fault, requests_received
from tests.factories import AMER, APAC, EMEA, error_of

ACTION = "07844969-1889-4de3-9026-020af94be855"
NOT_MANUAL = "e6bb97be-0957-49e0-9922-1a684d093858"
DISABLED = "0a0b0c0d-0e0f-4a1b-8c2d-3e4f5a6b7c8d"
DEVICES = ["da2add909a144e8235453f88dc45172f", "4423e4c059b2c72ee9382e135888bef7"]


def act_client_for(server, username="portal", password="portal-demo", **kwargs):
    options = {"default_timeout": 5, "read_margin": 1} | kwargs
    return ActClient(base_url=server.url, username=username, password=password, **options)


def raw_post(client, body: bytes, content_type="application/json"):
    """A hand-made body through the client's own session and answer handling."""
    response = client.session.post(
        client.base_url + "/api/remoteaction/v2/run", data=body, headers={"Content-Type": content_type}, timeout=5
    )
    return client._json_or_raise(response)


def test_it_returns_each_engines_answer(act_client):
    answers = act_client.run(remote_action_uid=ACTION, device_uids=DEVICES)

    assert [(a.database_uid, a.code) for a in answers] == [
        (EMEA, EngineCode.OK),
        (AMER, EngineCode.OK),
        (APAC, EngineCode.ENGINE_ERROR),
    ]
    assert answers[2].message == "Error in request to engine [172.16.5.177:999]: no license"


def test_it_sends_the_documented_request(act_client, sim_requests):
    act_client.run(
        remote_action_uid=ACTION,
        device_uids=DEVICES[:1],
        engine_uids=[EMEA],
        timeout_seconds=30,
        params={"Mode": "full"},
        request_uid="req-1",
    )

    [received] = sim_requests()
    assert received["user"] == "portal"
    assert received["content_type"] == "application/json"
    assert received["user_agent"].startswith("fix-my-device-portal")
    assert received["body"] == {
        "requestUid": "req-1",
        "remoteActionUid": ACTION,
        "deviceUids": DEVICES[:1],
        "engineDatabaseUids": [EMEA],
        "timeoutSeconds": 30,
        "params": {"Mode": "full"},
    }


def test_it_targets_named_engines_and_reports_unknown_ones_as_excluded(act_client):
    answers = act_client.run(remote_action_uid=ACTION, device_uids=DEVICES, engine_uids=[AMER, "0" * 32])

    assert [(a.database_uid, a.raw_code) for a in answers] == [(AMER, "ok"), ("0" * 32, "excluded")]
    assert answers[1].code is EngineCode.EXCLUDED


def test_it_reports_engines_the_user_may_not_use_as_no_permission(simulator):
    answers = act_client_for(simulator, "one-engine", "one-engine-demo").run(
        remote_action_uid=ACTION, device_uids=DEVICES
    )

    assert {a.database_uid: a.code for a in answers} == {
        EMEA: EngineCode.OK,
        AMER: EngineCode.NO_PERMISSION,
        APAC: EngineCode.NO_PERMISSION,
    }


def test_it_keeps_an_engine_code_it_does_not_know():
    config = sim.load_config()
    config["engines"][0] |= {"answer": "brand_new_code", "message": "later"}
    server = sim.start_in_thread(config=config)
    try:
        answers = act_client_for(server).run(remote_action_uid=ACTION, device_uids=DEVICES, engine_uids=[EMEA])
    finally:
        server.shutdown()
        server.server_close()
    assert answers[0].code is EngineCode.UNRECOGNISED
    assert answers[0].raw_code == "brand_new_code"


def test_it_reports_engines_that_did_not_answer_in_time_as_timeout(act_client, inject_fault):
    inject_fault("latency", seconds=1.5)

    answers = act_client.run(remote_action_uid=ACTION, device_uids=DEVICES, timeout_seconds=1, engine_uids=[EMEA])

    assert answers[0].code is EngineCode.TIMEOUT


# --- The 14 documented error codes ---------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"{not json", "application/json", "INVALID_REQUEST_JSON"),
        (
            b'{"remoteActionUid": "%s", "deviceUids": "abc"}' % ACTION.encode(),
            "application/json",
            "INVALID_REQUEST_CONTENT",
        ),
        (b'{"remoteActionUid": "%s", "deviceUids": []}' % ACTION.encode(), "text/plain", "CONTENT_TYPE"),
        ('{"remoteActionUid": "é"}'.encode("latin-1"), "application/json", "ENCODING"),
        (b'{"remoteActionUid": "x"}', "application/json; charset=iso-8859-1", "ENCODING"),
        (b'{"deviceUids": ["%s"]}' % DEVICES[0].encode(), "application/json", "NO_REMOTE_ACTION_UID"),
        (b'{"remoteActionUid": "%s", "deviceUids": []}' % ACTION.encode(), "application/json", "NO_DEVICES"),
        (
            b'{"remoteActionUid": "not-a-guid", "deviceUids": ["%s"]}' % DEVICES[0].encode(),
            "application/json",
            "INVALID_ACTION_UID",
        ),
        (
            b'{"remoteActionUid": "%s", "deviceUids": ["LAPTOP-1"]}' % ACTION.encode(),
            "application/json",
            "INVALID_DEVICE_UID",
        ),
    ],
)
def test_it_classifies_malformed_requests_as_permanent(act_client, body, content_type, code):
    error = error_of(lambda: raw_post(act_client, body, content_type))

    assert (error.code, error.http_status, error.kind) == (code, 400, ErrorKind.PERMANENT)
    assert what_happened(error.reason) and code not in what_happened(error.reason)


@pytest.mark.parametrize(
    ("user", "action", "code", "status"),
    [
        ("portal", "5f3c2a4e-0000-4e7f-8a9b-0c1d2e3f4a5b", "UNKNOWN_OR_DISABLED_REMOTE_ACTION", 400),
        ("portal", DISABLED, "UNKNOWN_OR_DISABLED_REMOTE_ACTION", 400),
        ("portal", NOT_MANUAL, "NO_MANUAL_EXECUTION", 400),
        ("no-api", ACTION, "NO_PERMISSION", 403),
        ("no-engines", ACTION, "NO_ENGINES_TO_TARGET", 403),
    ],
)
def test_it_classifies_refusals_as_permanent(simulator, user, action, code, status):
    client = act_client_for(simulator, user, f"{user}-demo")

    error = error_of(lambda: client.run(remote_action_uid=action, device_uids=DEVICES))

    assert (error.code, error.http_status, error.kind) == (code, status, ErrorKind.PERMANENT)


def test_it_classifies_too_many_devices_as_permanent(act_client):
    many = [f"{n:032x}" for n in range(10_001)]

    error = error_of(lambda: act_client.run(remote_action_uid=ACTION, device_uids=many))

    assert (error.code, error.http_status, error.kind) == ("TOO_MANY_DEVICES", 400, ErrorKind.PERMANENT)


def test_it_classifies_internal_error_as_unknown(act_client, inject_fault):
    # Nexthink may answer INTERNAL_ERROR after it asked the Engines: the action may run.
    inject_fault("internal_error")

    error = error_of(lambda: act_client.run(remote_action_uid=ACTION, device_uids=DEVICES))

    assert (error.code, error.http_status, error.kind) == ("INTERNAL_ERROR", 500, ErrorKind.UNKNOWN)


def test_it_classifies_a_bare_server_error_as_unknown(act_client, inject_fault):
    inject_fault("html_500")

    error = error_of(lambda: act_client.run(remote_action_uid=ACTION, device_uids=DEVICES))

    assert (error.code, error.reason, error.http_status, error.kind) == (None, "SERVER_ERROR", 500, ErrorKind.UNKNOWN)


@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), (None, None), ("soon", None)])
def test_it_reads_retry_after_on_a_429(act_client, inject_fault, header, expected):
    inject_fault("too_many", retry_after=header)

    error = error_of(lambda: act_client.run(remote_action_uid=ACTION, device_uids=DEVICES))

    assert (error.http_status, error.kind, error.retry_after) == (429, ErrorKind.RETRYABLE, expected)


def test_it_reads_retry_after_given_as_a_date():
    from email.utils import format_datetime

    from actions.nexthink.http import parse_retry_after

    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)

    assert 55 <= parse_retry_after(in_a_minute) <= 60
    assert parse_retry_after("99999999") == 3600  # capped


def test_a_server_that_trickles_its_answer_cannot_hold_the_call(simulator, inject_fault, sim_requests):
    # Every byte arrives well within the read timeout, so only a wall-clock deadline ends the call.
    inject_fault("trickle", seconds=0.3)
    client = act_client_for(simulator, read_margin=1, connect_timeout=1)

    error = error_of(lambda: client.run(remote_action_uid=ACTION, device_uids=DEVICES, timeout_seconds=1))

    assert (error.reason, error.kind) == ("TIMEOUT", ErrorKind.UNKNOWN)
    assert "no complete answer within 3 s" in error.message
    assert len(sim_requests()) == 1


# --- HTTP and transport failures -----------------------------------------------------------
def test_it_classifies_bad_credentials_as_permanent(simulator):
    error = error_of(
        lambda: act_client_for(simulator, "portal", "wrong").run(remote_action_uid=ACTION, device_uids=DEVICES)
    )

    assert (error.code, error.reason, error.http_status, error.kind) == (None, "UNAUTHORIZED", 401, ErrorKind.PERMANENT)


def test_it_classifies_a_wrong_url_as_permanent(simulator):
    client = ActClient(base_url=simulator.url + "/nexthink", username="portal", password="portal-demo")

    error = error_of(lambda: client.run(remote_action_uid=ACTION, device_uids=DEVICES))

    assert (error.reason, error.http_status, error.kind) == ("NOT_FOUND", 404, ErrorKind.PERMANENT)


def test_the_run_url_answers_get_with_404(act_client):
    response = act_client.session.get(act_client.base_url + "/api/remoteaction/v2/run", timeout=5)

    assert response.status_code == 404


@pytest.mark.parametrize("status", [502, 503])  # the proxy could not pass the request on
def test_it_classifies_a_proxy_page_as_retryable(act_client, inject_fault, status):
    inject_fault(f"html_{status}")

    error = error_of(lambda: act_client.run(remote_action_uid=ACTION, device_uids=DEVICES))

    assert (error.code, error.reason, error.http_status, error.kind) == (
        None,
        "UNAVAILABLE",
        status,
        ErrorKind.RETRYABLE,
    )


def test_it_classifies_a_read_timeout_as_unknown(simulator, inject_fault, sim_requests):
    inject_fault("hang", seconds=4)
    client = act_client_for(simulator, read_margin=1)

    error = error_of(lambda: client.run(remote_action_uid=ACTION, device_uids=DEVICES, timeout_seconds=1))

    assert (error.reason, error.kind) == ("TIMEOUT", ErrorKind.UNKNOWN)
    assert len(sim_requests()) == 1  # it was sent, and it was not sent again


def test_it_waits_longer_than_nexthinks_own_timeout(simulator, inject_fault):
    inject_fault("hang", seconds=1.5)
    client = act_client_for(simulator, read_margin=3)

    answers = client.run(remote_action_uid=ACTION, device_uids=DEVICES, timeout_seconds=1, engine_uids=[EMEA])

    assert answers[0].code is EngineCode.OK


@pytest.mark.parametrize("fault", ["drop", "close"])
def test_it_classifies_a_dropped_connection_as_unknown(act_client, inject_fault, sim_requests, fault):
    inject_fault(fault)

    error = error_of(lambda: act_client.run(remote_action_uid=ACTION, device_uids=DEVICES))

    assert (error.reason, error.http_status, error.kind) == ("CONNECTION_LOST", None, ErrorKind.UNKNOWN)
    assert len(sim_requests()) == 1


def test_it_classifies_a_refused_connection_as_retryable():
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = ActClient(base_url=f"http://127.0.0.1:{port}", username="portal", password="portal-demo")

    error = error_of(lambda: client.run(remote_action_uid=ACTION, device_uids=DEVICES))

    assert (error.reason, error.kind) == ("CONNECTION_FAILED", ErrorKind.RETRYABLE)


def test_it_classifies_a_gateway_timeout_page_as_unknown(act_client, inject_fault, sim_requests):
    inject_fault("html_504")  # the proxy passed the request on, then stopped waiting: it may have run

    error = error_of(lambda: act_client.run(remote_action_uid=ACTION, device_uids=DEVICES))

    assert (error.code, error.reason, error.http_status, error.kind) == (None, "TIMEOUT", 504, ErrorKind.UNKNOWN)
    assert len(sim_requests()) == 1


def test_it_classifies_a_200_that_is_not_json_as_unknown(act_client, inject_fault):
    inject_fault("html_200")

    error = error_of(lambda: act_client.run(remote_action_uid=ACTION, device_uids=DEVICES))

    assert (error.reason, error.http_status, error.kind) == ("BAD_RESPONSE", 200, ErrorKind.UNKNOWN)


def test_it_refuses_uids_with_a_trailing_newline_without_sending(act_client, sim_requests):
    with pytest.raises(ActApiError):
        act_client.run(remote_action_uid=ACTION + "\n", device_uids=DEVICES)
    with pytest.raises(ActApiError):
        act_client.run(remote_action_uid=ACTION, device_uids=[DEVICES[0] + "\n"])

    assert sim_requests() == []


# --- Secrets ---------------------------------------------------------------------------------
def test_it_never_logs_or_shows_the_password(simulator, caplog):
    caplog.set_level(logging.DEBUG)
    password = "s3cret-Pa55"
    token = base64.b64encode(f"portal:{password}".encode()).decode()
    client = act_client_for(simulator, "portal", password)

    error = error_of(lambda: client.run(remote_action_uid=ACTION, device_uids=DEVICES))

    shown = caplog.text + str(error) + repr(error.as_dict()) + repr(client)
    assert error.reason == "UNAUTHORIZED"
    assert password not in shown and token not in shown


# --- List Engines API ------------------------------------------------------------------------
def test_it_lists_engines(act_client):
    engines = act_client.list_engines()

    assert [(e.database_uid, e.name, e.status) for e in engines] == [
        (EMEA, "engine-emea", "CONNECTED"),
        (AMER, "engine-amer", "CONNECTED"),
        (APAC, "engine-apac", "CONNECTED"),
    ]
    assert engines[0].port == 999


def test_listing_engines_with_bad_credentials_is_permanent(simulator):
    error = error_of(lambda: act_client_for(simulator, "portal", "nope").list_engines())

    assert (error.reason, error.kind) == ("UNAUTHORIZED", ErrorKind.PERMANENT)


# --- TLS -------------------------------------------------------------------------------------
def test_it_refuses_a_certificate_it_cannot_verify(tls_simulator, tls_ca):
    assert tls_simulator.url.startswith("https://")

    error = error_of(lambda: act_client_for(tls_simulator).run(remote_action_uid=ACTION, device_uids=DEVICES))

    # The handshake fails before the request is sent: nothing can have been accepted.
    assert (error.reason, error.kind) == ("TLS_ERROR", ErrorKind.RETRYABLE)
    assert requests_received(tls_simulator, verify=tls_ca) == []


def test_a_server_that_does_not_speak_tls_fails_the_handshake_and_is_retryable(simulator, sim_requests):
    client = act_client_for(simulator)
    client.base_url = simulator.url.replace("http://", "https://")  # TLS to the plain HTTP simulator

    error = error_of(lambda: client.run(remote_action_uid=ACTION, device_uids=DEVICES))

    assert (error.reason, error.kind) == ("TLS_ERROR", ErrorKind.RETRYABLE)
    assert sim_requests() == []


def test_a_tls_error_while_the_answer_is_read_is_unknown_not_a_certificate_problem(tls_simulator, tls_ca):
    # Nexthink read the whole request, then the answer's bytes break TLS: the action may have run.
    add_fault(tls_simulator, "not_tls", verify=tls_ca)
    client = act_client_for(tls_simulator, verify=tls_ca)

    error = error_of(lambda: client.run(remote_action_uid=ACTION, device_uids=DEVICES))

    assert (error.reason, error.http_status, error.kind) == ("CONNECTION_LOST", None, ErrorKind.UNKNOWN)
    assert error.message.endswith("(SSLError)")  # what requests raised: the case this test is about
    assert "certificate" not in error.message and "certificate" not in what_happened(error.reason)
    assert "cannot tell whether the action ran" in what_happened(error.reason)
    assert len(requests_received(tls_simulator, verify=tls_ca)) == 1


def test_a_connection_dropped_while_the_request_is_sent_is_retryable():
    # A server that reads the headers, then resets the connection while the body is still coming:
    # Nexthink never had the whole request, so nothing can have run.
    listener = socket.create_server(("127.0.0.1", 0))
    headers_read = threading.Event()

    def reset_after_the_headers():
        conn, _ = listener.accept()
        with conn:
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                received += chunk
            headers_read.set()
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset

    server = threading.Thread(target=reset_after_the_headers, daemon=True)
    server.start()
    client = ActClient(base_url=f"http://127.0.0.1:{listener.getsockname()[1]}", username="portal", password="x")
    # Far more than the sockets' buffers hold: the client is still writing when the reset comes.
    big = {"Mode": "x" * 32_000_000}

    try:
        error = error_of(lambda: client.run(remote_action_uid=ACTION, device_uids=DEVICES, params=big))
    finally:
        server.join(timeout=30)
        listener.close()

    assert headers_read.is_set()
    assert (error.reason, error.kind) == ("CONNECTION_FAILED", ErrorKind.RETRYABLE)


def test_it_trusts_a_certificate_signed_by_the_configured_ca_bundle(tls_simulator, tls_ca):
    client = act_client_for(tls_simulator, verify=tls_ca)

    answers = client.run(remote_action_uid=ACTION, device_uids=DEVICES, engine_uids=[EMEA])

    assert answers[0].code is EngineCode.OK


def test_the_simulator_records_no_credentials(act_client, sim_requests):
    act_client.run(remote_action_uid=ACTION, device_uids=DEVICES)

    assert "portal-demo" not in json.dumps(sim_requests())
