"""The Nexthink Infinity client against the simulator, over real HTTP on loopback. Nothing is patched."""

import logging
import threading

import pytest

from actions.nexthink.errors import ActApiError, ActInputError, ErrorKind
from actions.nexthink.infinity.client import (
    TOKEN_RENEW_MARGIN_SECONDS,
    ExecutionStatus,
    InfinityClient,
    TokenCache,
    TriggerInfo,
)
from tests.conftest import INFINITY_DEVICES_QUERY, INFINITY_EXECUTIONS_QUERY
from tests.factories import error_of

ALICE_LAPTOP = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
ALICE_MAC = "0e9d8c7b-6a5f-4e4d-9c3b-2a1f0e9d8c7b"
BOB_OFFLINE_DESKTOP = "8a9b0c1d-2e3f-4a4b-9c5d-6e7f8a9b0c1d"
EXECUTE = "/api/v1/act/execute"
NQL = "/api/v2/nql/execute"
SECRET = "portal-demo"


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client_for(sim, *, client_id="portal", secret=SECRET, tokens=None, **kwargs) -> InfinityClient:
    options = {
        "executions_query": INFINITY_EXECUTIONS_QUERY,
        "devices_query": INFINITY_DEVICES_QUERY,
        "timeout": 5,
        "connect_timeout": 2,
    } | kwargs
    return InfinityClient(
        api_url=sim.url,
        token_url=sim.token_url,
        client_id=client_id,
        client_secret=secret,
        tokens=tokens or TokenCache(),
        **options,
    )


def run_on(client, device=ALICE_LAPTOP, action="#clear_teams_cache", **kwargs):
    return client.execute(remote_action_id=action, devices=[device], **kwargs)


# --- The token ------------------------------------------------------------------------------------------
def test_it_asks_for_a_token_with_basic_auth_and_the_client_credentials_grant(infinity_sim):
    client_for(infinity_sim).remote_actions()

    [token_request] = infinity_sim.token_requests()
    assert token_request["auth"] == "basic" and token_request["client_id"] == "portal"
    assert token_request["body"] == {"grant_type": "client_credentials", "scope": "service:integration"}
    [listing] = infinity_sim.requests("/api/v1/act/remote-action")
    assert listing["auth"] == "bearer"


def test_it_shares_one_token_across_many_calls_threads_and_clients(infinity_sim):
    tokens = TokenCache()
    clients = [client_for(infinity_sim, tokens=tokens) for _ in range(3)]
    failures = []

    def work(client):
        try:
            for _ in range(3):
                client.devices_of_user("CORP\\alice")
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(clients[i % 3],)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert failures == []
    assert len(infinity_sim.requests(NQL)) == 36
    assert len(infinity_sim.token_requests()) == 1


def test_threads_share_one_request_to_a_slow_failing_token_endpoint_and_its_error(infinity_sim):
    # The token endpoint hangs longer than the client waits: every request to it fails after its timeout.
    infinity_sim.fault("token", "hang", seconds=3, times=0)
    clock = FakeClock()  # stands still: every thread below comes within the failure's few seconds
    tokens = TokenCache(clock=clock)
    client = client_for(infinity_sim, tokens=tokens, timeout=1, connect_timeout=1)
    errors = []

    def work():
        try:
            run_on(client)
        except ActApiError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not any(thread.is_alive() for thread in threads)
    assert len(errors) == 50
    assert all((e.kind, e.reason) == (ErrorKind.RETRYABLE, "TIMEOUT") for e in errors)
    assert all(e.retry_after >= 5 for e in errors)  # a run's retry comes after the failure is forgotten
    assert all(e.message.startswith("Getting a Nexthink token failed") for e in errors)
    assert len(infinity_sim.token_requests()) == 1  # one request, not one per thread
    assert infinity_sim.requests(EXECUTE) == []

    clock.now += 5.1  # the failure is forgotten: the next call asks again
    assert error_of(lambda: run_on(client)).reason == "TIMEOUT"
    assert len(infinity_sim.token_requests()) == 2


def test_it_renews_the_token_shortly_before_it_expires(infinity_sim):
    clock = FakeClock()
    client = client_for(infinity_sim, tokens=TokenCache(clock=clock))
    client.remote_actions()

    clock.now += 900 - TOKEN_RENEW_MARGIN_SECONDS - 1
    client.remote_actions()
    assert len(infinity_sim.token_requests()) == 1

    clock.now += 2
    client.remote_actions()
    assert len(infinity_sim.token_requests()) == 2


def test_it_renews_the_token_once_after_a_401_and_sends_the_call_again(infinity_sim):
    client = client_for(infinity_sim)
    client.remote_actions()
    infinity_sim.fault("execute", "expired_token")

    accepted = run_on(client)

    assert accepted.request_id
    assert len(infinity_sim.token_requests()) == 2
    assert len(infinity_sim.requests(EXECUTE)) == 2  # the first was refused: nothing ran
    assert len(infinity_sim.executions()) == 1


def test_it_renews_after_the_simulator_expires_every_token(infinity_sim):
    client = client_for(infinity_sim)
    client.remote_actions()
    infinity_sim.expire_tokens()

    client.remote_actions()

    assert len(infinity_sim.token_requests()) == 2


def test_execute_asks_before_each_post_once_its_token_is_in_hand(infinity_sim):
    client = client_for(infinity_sim)
    infinity_sim.fault("execute", "expired_token")
    tokens_seen = []

    run_on(client, before_send=lambda: tokens_seen.append(len(infinity_sim.token_requests())))

    assert tokens_seen == [1, 2]  # after the first token, and again after the renewal the 401 asked for

    class Withdrawn(Exception):
        pass

    def withdrawn():
        raise Withdrawn

    with pytest.raises(Withdrawn):
        run_on(client, before_send=withdrawn)
    assert len(infinity_sim.requests(EXECUTE)) == 2  # the refused one and the accepted one above; no third
    assert len(infinity_sim.executions()) == 1


def test_a_second_401_in_a_row_is_a_permanent_refusal(infinity_sim):
    client = client_for(infinity_sim)
    infinity_sim.fault("execute", "expired_token", times=2)

    error = error_of(lambda: run_on(client))

    assert (error.http_status, error.kind, error.reason) == (401, ErrorKind.PERMANENT, "UNAUTHORIZED")
    assert len(infinity_sim.requests(EXECUTE)) == 2
    assert infinity_sim.executions() == []


def test_wrong_credentials_are_permanent_and_the_secret_and_token_are_never_shown(infinity_sim, caplog):
    caplog.set_level(logging.DEBUG)
    good = client_for(infinity_sim)
    good.remote_actions()
    token = next(iter(good._tokens._tokens.values()))[0]
    bad = client_for(infinity_sim, secret="wrong-secret-value")

    error = error_of(bad.remote_actions)

    assert (error.http_status, error.kind, error.reason) == (401, ErrorKind.PERMANENT, "UNAUTHORIZED")
    assert infinity_sim.requests("/api/v1/act/remote-action")[-1]["auth"] == "bearer"  # only the good one got through
    for shown in (str(error), error.message, repr(bad), repr(good), caplog.text):
        assert "wrong-secret-value" not in shown and SECRET not in shown and token not in shown


@pytest.mark.parametrize(
    ("fault", "options", "kind"),
    [
        ("html_503", {}, ErrorKind.RETRYABLE),
        ("too_many", {"retry_after": "4"}, ErrorKind.RETRYABLE),
        ("drop", {}, ErrorKind.RETRYABLE),  # the token was lost, not an action: nothing ran
        ("internal_error", {}, ErrorKind.RETRYABLE),
    ],
)
def test_a_failed_token_request_never_sends_the_action(infinity_sim, fault, options, kind):
    infinity_sim.fault("token", fault, **options)

    error = error_of(lambda: run_on(client_for(infinity_sim)))

    assert error.kind is kind
    assert error.message.startswith("Getting a Nexthink token failed")
    assert infinity_sim.requests(EXECUTE) == []


def test_an_unreachable_token_endpoint_is_retryable(infinity_sim):
    client = client_for(infinity_sim)
    client.token_url = "http://127.0.0.1:9/oauth2/default/v1/token"

    error = error_of(lambda: run_on(client))

    assert (error.kind, error.reason) == (ErrorKind.RETRYABLE, "CONNECTION_FAILED")


# --- Execute ------------------------------------------------------------------------------------------
def test_it_sends_the_documented_execute_body(infinity_sim):
    accepted = run_on(
        client_for(infinity_sim),
        action="#restart_windows_service",
        params={"ServiceName": "Spooler"},
        expires_in_minutes=120,
        trigger_info=TriggerInfo(reason="x" * 600, external_reference="run-42"),
    )

    [received] = infinity_sim.requests(EXECUTE)
    assert received["body"] == {
        "remoteActionId": "#restart_windows_service",
        "params": {"ServiceName": "Spooler"},
        "devices": [ALICE_LAPTOP],
        "expiresInMinutes": 120,
        "triggerInfo": {"externalSource": "Fix my device", "reason": "x" * 500, "externalReference": "run-42"},
    }
    assert accepted.expires_in_minutes == 120
    assert accepted.request_id == infinity_sim.executions()[0]["request_id"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"remote_action_id": "clear_teams_cache"},
        {"remote_action_id": "#with space"},
        {"remote_action_id": "#"},
        {"devices": []},
        {"devices": ALICE_LAPTOP},
        {"devices": ["a b"]},
        {"devices": [f"dev-{i}" for i in range(10_001)]},
        {"params": {"ServiceName": 3}},
        {"expires_in_minutes": 59},
        {"expires_in_minutes": 10_081},
        {"expires_in_minutes": True},
    ],
)
def test_it_refuses_a_request_nexthink_would_refuse_and_sends_nothing(infinity_sim, kwargs):
    request = {"remote_action_id": "#clear_teams_cache", "devices": [ALICE_LAPTOP]} | kwargs

    with pytest.raises(ActInputError):
        client_for(infinity_sim).execute(**request)

    assert infinity_sim.requests() == []


def test_it_accepts_ten_thousand_devices(infinity_sim):
    devices = [f"00000000-0000-4000-8000-{i:012d}" for i in range(10_000)]

    accepted = client_for(infinity_sim).execute(remote_action_id="#clear_teams_cache", devices=devices)

    assert accepted.request_id and len(infinity_sim.requests(EXECUTE)[0]["body"]["devices"]) == 10_000


@pytest.mark.parametrize(
    ("fault", "options", "status", "kind", "reason"),
    [
        ("answer", {"status": 400, "body": {"code": "INVALID", "message": "Bad request"}}, 400, "permanent", "INVALID"),
        ("answer", {"status": 403, "body": {"code": "FORBIDDEN", "message": "No"}}, 403, "permanent", "FORBIDDEN"),
        ("too_many", {"retry_after": "7"}, 429, "retryable", "TOO_MANY_REQUESTS"),
        ("html_502", {}, 502, "retryable", "UNAVAILABLE"),
        ("html_503", {}, 503, "retryable", "UNAVAILABLE"),
        ("internal_error", {}, 500, "unknown", "INTERNAL_ERROR"),
        ("html_500", {}, 500, "unknown", "SERVER_ERROR"),
        ("html_504", {}, 504, "unknown", "TIMEOUT"),
        ("close", {}, None, "unknown", "CONNECTION_LOST"),
        ("drop", {}, None, "unknown", "CONNECTION_LOST"),
    ],
)
def test_each_execute_failure_has_its_kind(infinity_sim, fault, options, status, kind, reason):
    client = client_for(infinity_sim)
    client.remote_actions()  # the token first, so that the fault meets the execute
    infinity_sim.fault("execute", fault, **options)

    error = error_of(lambda: run_on(client))

    assert (error.http_status, str(error.kind), error.reason) == (status, kind, reason)
    assert len(infinity_sim.requests(EXECUTE)) == 1  # never resent
    if fault == "too_many":
        assert error.retry_after == 7.0


def test_a_read_timeout_on_execute_is_unknown(infinity_sim):
    client = client_for(infinity_sim, timeout=1)
    client.remote_actions()
    infinity_sim.fault("execute", "hang", seconds=5)

    error = error_of(lambda: run_on(client))

    assert (error.kind, error.reason) == (ErrorKind.UNKNOWN, "TIMEOUT")


def test_a_tls_error_while_the_execute_answer_is_read_is_unknown(tls_infinity_sim, tls_ca):
    client = client_for(tls_infinity_sim, verify=tls_ca)
    client.remote_actions()  # a good token first, so that the fault meets the execute
    tls_infinity_sim.fault("execute", "not_tls")  # Nexthink read the whole request; its answer breaks TLS

    error = error_of(lambda: run_on(client))

    assert (error.kind, error.reason) == (ErrorKind.UNKNOWN, "CONNECTION_LOST")
    assert error.message.endswith("(SSLError)") and "certificate" not in error.message
    assert len(tls_infinity_sim.requests(EXECUTE)) == 1  # never resent


def test_a_tls_handshake_failure_on_execute_after_a_good_token_is_retryable(tls_infinity_sim, tls_ca):
    tokens = TokenCache()
    client_for(tls_infinity_sim, verify=tls_ca, tokens=tokens).remote_actions()  # a good token, cached
    untrusting = client_for(tls_infinity_sim, tokens=tokens)  # the same token; the system's CAs only

    error = error_of(lambda: run_on(untrusting))

    assert (error.kind, error.reason) == (ErrorKind.RETRYABLE, "TLS_ERROR")
    assert len(tls_infinity_sim.token_requests()) == 1 and tls_infinity_sim.requests(EXECUTE) == []


def test_a_tls_error_while_the_token_answer_is_read_is_retryable(tls_infinity_sim, tls_ca):
    # The token request sends no action: whatever broke, the run may be sent again.
    tls_infinity_sim.fault("token", "not_tls")

    error = error_of(lambda: run_on(client_for(tls_infinity_sim, verify=tls_ca)))

    assert (error.kind, error.reason) == (ErrorKind.RETRYABLE, "CONNECTION_LOST")
    assert error.message.startswith("Getting a Nexthink token failed") and error.message.endswith("(SSLError)")
    assert len(tls_infinity_sim.token_requests()) == 1 and tls_infinity_sim.requests(EXECUTE) == []


@pytest.mark.parametrize(
    ("action", "reason"), [("#no_such_action", "REMOTE_ACTION_NOT_FOUND"), ("#collect_inventory", "API_NOT_ENABLED")]
)
def test_an_action_nexthink_will_not_run_is_a_permanent_400(infinity_sim, action, reason):
    error = error_of(lambda: run_on(client_for(infinity_sim), action=action))

    assert (error.http_status, error.kind, error.reason) == (400, ErrorKind.PERMANENT, reason)


def test_a_client_without_the_act_permission_gets_a_permanent_403(infinity_sim):
    error = error_of(lambda: run_on(client_for(infinity_sim, client_id="no-act", secret="no-act-demo")))

    assert (error.http_status, error.kind, error.reason) == (403, ErrorKind.PERMANENT, "NO_PERMISSION")


# --- NQL ----------------------------------------------------------------------------------------------
def test_an_nql_429_is_waited_out_as_long_as_asked_then_asked_again(infinity_sim):
    waits = []
    client = client_for(infinity_sim, retry_wait_limit=10, sleep=waits.append)
    client.remote_actions()
    infinity_sim.fault("nql", "too_many", retry_after="3")

    devices = client.devices_of_user("CORP\\alice")

    assert waits == [3.0]
    assert len(devices) == 2 and len(infinity_sim.requests(NQL)) == 2


def test_an_nql_429_longer_than_the_limit_is_left_to_the_caller(infinity_sim):
    waits = []
    client = client_for(infinity_sim, retry_wait_limit=10, sleep=waits.append)
    infinity_sim.fault("nql", "too_many", retry_after="30")

    error = error_of(lambda: client.devices_of_user("CORP\\alice"))

    assert (error.kind, error.retry_after, waits) == (ErrorKind.RETRYABLE, 30.0, [])
    assert len(infinity_sim.requests(NQL)) == 1


def test_an_execute_429_is_never_waited_out(infinity_sim):
    waits = []
    client = client_for(infinity_sim, retry_wait_limit=10, sleep=waits.append)
    infinity_sim.fault("execute", "too_many", retry_after="1")

    error = error_of(lambda: run_on(client))

    assert (error.retry_after, waits, len(infinity_sim.requests(EXECUTE))) == (1.0, [], 1)


def test_it_sends_the_saved_query_id_and_parameters(infinity_sim):
    client_for(infinity_sim).devices_of_user("CORP\\alice")

    [query] = infinity_sim.requests(NQL)
    assert query["body"] == {"queryId": INFINITY_DEVICES_QUERY, "parameters": {"user_name": "CORP\\alice"}}


@pytest.mark.parametrize("query_id", ["portal_devices", "#Portal", "#a", "#with-dash"])
def test_it_refuses_a_query_id_the_nql_api_would_refuse(infinity_sim, query_id):
    with pytest.raises(ActInputError):
        client_for(infinity_sim).nql(query_id, {})

    assert infinity_sim.requests() == []


def test_nql_answers_in_utc_only_when_asked_and_the_client_always_asks(infinity_sim):
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    import requests

    from actions.nexthink.infinity.client import UTC_TIMES

    client = client_for(infinity_sim)
    token = client._token()
    body = {"queryId": "#portal_devices_of_user", "parameters": {"user_name": "CORP\\alice"}}

    def last_seen(headers: dict) -> str:
        answer = requests.post(
            infinity_sim.url + NQL, json=body, headers={"Authorization": f"Bearer {token}"} | headers, timeout=5
        ).json()
        return answer["data"][0]["device.last_seen"]

    utc, regional = last_seen(UTC_TIMES), last_seen({})
    moment = datetime.fromisoformat(utc.replace("Z", "+00:00"))
    # Without the header: the tenant's regional wall-clock time, unlabelled (read as UTC it is hours off).
    assert regional == moment.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%dT%H:%M:%S")
    assert moment.tzinfo is UTC or moment.utcoffset().total_seconds() == 0
    # The client asks for UTC on every NQL call.
    assert all(d.last_seen.endswith("Z") for d in client.devices_of_user("CORP\\alice"))


def test_an_unknown_saved_query_is_a_permanent_error(infinity_sim):
    error = error_of(lambda: client_for(infinity_sim).nql("#not_saved", {}))

    assert (error.http_status, error.kind, error.code) == (404, ErrorKind.PERMANENT, "404")


def test_it_finds_a_users_devices(infinity_sim):
    devices = client_for(infinity_sim).devices_of_user("CORP\\alice")

    assert [(d.name, d.collector_uid, d.platform) for d in devices] == [
        ("LAPTOP-ALICE", ALICE_LAPTOP, "Windows"),
        ("MACBOOK-ALICE", ALICE_MAC, "macOS"),
    ]
    assert all(d.last_seen and d.last_seen.endswith("Z") for d in devices)
    assert client_for(infinity_sim).devices_of_user("CORP\\nobody") == []


def test_without_a_saved_query_it_says_which_setting_is_missing(infinity_sim):
    with pytest.raises(ActInputError, match="NEXTHINK_NQL_DEVICES_QUERY"):
        client_for(infinity_sim, devices_query="").devices_of_user("CORP\\alice")


# --- Follow-up of an execution --------------------------------------------------------------------------
def test_an_execution_moves_from_waiting_to_in_progress_to_success_with_outputs(infinity_sim):
    client = client_for(infinity_sim)
    accepted = run_on(client)

    [waiting] = client.executions(accepted.request_id, ALICE_LAPTOP)
    infinity_sim.advance(1.5)
    [running] = client.executions(accepted.request_id, ALICE_LAPTOP)
    infinity_sim.advance(5)
    [done] = client.executions(accepted.request_id, ALICE_LAPTOP)

    assert (waiting.status, waiting.raw_status, waiting.is_final) == (
        ExecutionStatus.WAITING,
        "waiting_for_device",
        False,
    )
    assert (running.status, running.is_final) == (ExecutionStatus.IN_PROGRESS, False)
    assert (done.status, done.is_final, done.device) == (ExecutionStatus.SUCCESS, True, ALICE_LAPTOP)
    assert done.outputs == {"CacheSizeMB": "812"}
    [query] = infinity_sim.requests(NQL)[-1:]
    assert query["body"] == {
        "queryId": INFINITY_EXECUTIONS_QUERY,
        "parameters": {"request_id": accepted.request_id},
    }


def test_an_execution_can_end_in_failure_with_its_details(infinity_sim):
    client = client_for(infinity_sim)
    accepted = run_on(client, action="#repair_vpn", params={"Profile": "Corporate"})
    infinity_sim.advance(10)

    [failed] = client.executions(accepted.request_id, ALICE_LAPTOP)

    assert (failed.status, failed.is_final) == (ExecutionStatus.FAILURE, True)
    assert failed.status_details == "The VPN client is not installed on this device."
    assert failed.outputs == {"Log": "vpncli not found"}


def test_an_execution_on_a_device_that_stays_offline_expires(infinity_sim):
    client = client_for(infinity_sim)
    accepted = run_on(client, device=BOB_OFFLINE_DESKTOP, expires_in_minutes=60)

    infinity_sim.advance(59 * 60)
    [still_waiting] = client.executions(accepted.request_id, BOB_OFFLINE_DESKTOP)
    infinity_sim.advance(2 * 60)
    [expired] = client.executions(accepted.request_id, BOB_OFFLINE_DESKTOP)

    assert still_waiting.status is ExecutionStatus.WAITING
    assert (expired.status, expired.is_final) == (ExecutionStatus.EXPIRED, True)


def test_executions_of_a_request_on_several_devices(infinity_sim):
    client = client_for(infinity_sim)
    accepted = client.execute(remote_action_id="#clear_teams_cache", devices=[ALICE_LAPTOP, ALICE_MAC])

    executions = client.executions(accepted.request_id)

    assert sorted(e.device for e in executions) == sorted([ALICE_LAPTOP, ALICE_MAC])
    assert client.executions("no-such-request", ALICE_LAPTOP) == []


# --- Remote actions list ----------------------------------------------------------------------------------
def test_it_lists_remote_actions_with_their_inputs_and_outputs(infinity_sim):
    actions = {a.id: a for a in client_for(infinity_sim).remote_actions()}

    assert set(actions) == {
        "#clear_teams_cache",
        "#restart_windows_service",
        "#repair_vpn",
        "#free_disk_space",
        "#collect_inventory",
    }
    assert actions["#collect_inventory"].api_enabled is False
    assert actions["#clear_teams_cache"].api_enabled is True
    [service] = actions["#restart_windows_service"].inputs
    assert (service.id, service.options, service.allow_custom_value) == (
        "ServiceName",
        ("Spooler", "WSearch", "BITS"),
        False,
    )
    assert actions["#repair_vpn"].inputs[0].allow_custom_value is True
    assert [o.id for o in actions["#restart_windows_service"].outputs] == ["PreviousState", "CurrentState"]
    assert actions["#clear_teams_cache"].uuid == "5b2f3c1e-8a47-4d6e-9f10-2a3b4c5d6e7f"
    assert "simulation" not in actions["#clear_teams_cache"].raw
