"""NXQL: user names as template parameters, reading answers, and the simulator's NXQL API over HTTP."""

import logging
from datetime import UTC, datetime

import pytest
import requests

from actions.nexthink.classic.client import ActClient
from actions.nexthink.classic.nxql import (
    DEVICES_OF_USER_QUERY,
    NxqlShapeError,
    devices_of_user_request,
    normalise_device_uid,
    parse_device_records,
    parse_nxql_datetime,
    query_devices_of_user,
)
from actions.nexthink.errors import ActApiError
from simulators import act_api as sim
from tests.factories import ALICE_LAPTOP


@pytest.fixture
def engine_client(simulator):
    """An NXQL client for Engine emea of the session simulator, built from the Act API client."""
    act = ActClient(base_url=simulator.url, username="portal", password="portal-demo", user_agent="portal-test/1")
    return act.for_base_url(simulator.url + "/_sim/engines/86acc8511251ec444d3a75bac33a23c7", default_timeout=5)


def set_devices(simulator, devices):
    requests.post(simulator.url + "/_sim/nxql", json={"devices": devices}, timeout=5).raise_for_status()


def nxql_queries(simulator):
    return requests.get(simulator.url + "/_sim/nxql_requests", timeout=5).json()


# --- The user name as a template parameter -------------------------------------------------------


def test_the_user_name_travels_as_p1_and_never_in_the_query_text():
    tricky = 'CORP\\d"arcy'

    request = devices_of_user_request(tricky)

    assert request == {"query": DEVICES_OF_USER_QUERY, "p1": tricky}
    assert DEVICES_OF_USER_QUERY == (
        "(select (device_uid name last_logged_on_user last_seen) (from device (where device "
        "(eq last_logged_on_user (string %1)))))"
    )


def test_it_refuses_control_characters():
    for bad in ("alice\n", "al\rice", "a\x00b", "tab\there"):
        with pytest.raises(ValueError, match="control characters"):
            devices_of_user_request(bad)


def test_it_refuses_an_empty_user_name():
    with pytest.raises(ValueError, match="empty"):
        devices_of_user_request("")


def test_the_simulator_reads_p1_as_one_string_literal_whatever_it_holds():
    name = 'x")) (eq name (pattern "*\\'

    fields, conditions = sim.parse_select(DEVICES_OF_USER_QUERY, {"p1": name})

    assert fields == ["device_uid", "name", "last_logged_on_user", "last_seen"]
    assert len(conditions) == 1
    assert conditions[0]({"last_logged_on_user": name})
    assert not conditions[0]({"last_logged_on_user": "x"})


def test_the_simulator_refuses_a_placeholder_without_its_parameter():
    with pytest.raises(sim.NxqlSyntaxError, match="p1 is missing"):
        sim.parse_select(DEVICES_OF_USER_QUERY, {})


@pytest.mark.parametrize("tricky", ['CORP\\d"arcy \\"the\\\\ king', 'CORP\\x"', "CORP\\", '"', "%1", "*"])
def test_a_name_with_quotes_and_backslashes_round_trips_over_http(simulator, engine_client, tricky):
    others = ["CORP\\d", "CORP", tricky + "\\", tricky.replace("\\", "\\\\"), tricky.replace('"', '\\"'), "alice"]
    set_devices(
        simulator,
        [
            {
                "uid": f"{index:032x}",
                "name": f"DEVICE-{index}",
                "engine": "86acc8511251ec444d3a75bac33a23c7",
                "platform": "windows",
                "last_logged_on_user": user,
            }
            for index, user in enumerate([tricky, *(o for o in others if o != tricky)])
        ],
    )

    devices = query_devices_of_user(engine_client, nexthink_user=tricky)

    assert [d.uid for d in devices] == [f"{0:032x}"]
    [asked] = nxql_queries(simulator)
    assert asked["query"] == DEVICES_OF_USER_QUERY and asked["params"] == {"p1": tricky}


def test_an_injection_attempt_matches_nobody_instead_of_everybody(simulator, engine_client):
    devices = query_devices_of_user(engine_client, nexthink_user='x")) (eq name (pattern "*')

    assert devices == []
    assert len(nxql_queries(simulator)) == 1


# --- Reading answers ---------------------------------------------------------------------------------


def test_it_skips_and_logs_records_without_a_usable_uid(caplog):
    data = [
        {
            "device_uid": ALICE_LAPTOP,
            "name": "LAPTOP-ALICE",
            "last_logged_on_user": "CORP\\alice",
            "last_seen": "2026-11-28T08:00:00",
        },
        {"name": "NO-UID", "last_logged_on_user": "CORP\\alice"},
        {"device_uid": "not-a-uid", "name": "BAD-UID", "last_logged_on_user": "CORP\\alice"},
        {"device_uid": None, "last_logged_on_user": "CORP\\alice"},
        "a string, not a record",
        ["a", "list"],
    ]
    with caplog.at_level(logging.WARNING, logger="actions.nexthink.classic.nxql"):
        devices = parse_device_records(data, expected_user="CORP\\alice", platform="windows", engine_label="emea")

    assert [d.uid for d in devices] == [ALICE_LAPTOP]
    assert devices[0].last_seen == datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    assert len([r for r in caplog.records if "skipped" in r.getMessage()]) == 5


def test_it_skips_a_record_of_another_user(caplog):
    data = [{"device_uid": ALICE_LAPTOP, "name": "LAPTOP-ALICE", "last_logged_on_user": "CORP\\bob"}]
    with caplog.at_level(logging.WARNING, logger="actions.nexthink.classic.nxql"):
        devices = parse_device_records(data, expected_user="CORP\\alice", platform="windows", engine_label="emea")

    assert devices == []
    assert "is not 'CORP\\\\alice''s" in caplog.text


def test_it_compares_the_user_name_without_regard_to_case():
    data = [{"device_uid": ALICE_LAPTOP.upper(), "name": "", "last_logged_on_user": "corp\\ALICE"}]

    devices = parse_device_records(data, expected_user="CORP\\alice", platform="windows", engine_label="emea")

    assert [(d.uid, d.name) for d in devices] == [(ALICE_LAPTOP, ALICE_LAPTOP)]


def test_an_answer_that_is_not_a_list_is_a_shape_error():
    for data in ({"error": "nope"}, "text", None, 3):
        with pytest.raises(NxqlShapeError):
            parse_device_records(data, expected_user="x", platform="windows", engine_label="emea")


def test_it_normalises_device_uids():
    assert normalise_device_uid(ALICE_LAPTOP.upper()) == ALICE_LAPTOP
    assert normalise_device_uid("da2add90-9a14-4e82-3545-3f88dc45172f") == ALICE_LAPTOP
    assert normalise_device_uid("{da2add90-9a14-4e82-3545-3f88dc45172f}") == ALICE_LAPTOP
    assert normalise_device_uid(ALICE_LAPTOP + "\n") == ALICE_LAPTOP  # surrounding blanks only
    for bad in ("", "zz" * 16, ALICE_LAPTOP[:-1], ALICE_LAPTOP + "0", 12, None, ["x"]):
        assert normalise_device_uid(bad) is None


def test_it_reads_nxql_datetimes():
    assert parse_nxql_datetime("2026-11-28T08:00:00Z") == datetime(2026, 11, 28, 8, tzinfo=UTC)
    assert parse_nxql_datetime("2026-11-28T09:00:00+01:00") == datetime(2026, 11, 28, 8, tzinfo=UTC)
    assert parse_nxql_datetime(0) == datetime(1970, 1, 1, tzinfo=UTC)
    for bad in ("yesterday", "", None, True, {"a": 1}):
        assert parse_nxql_datetime(bad) is None


# --- The NXQL API over HTTP --------------------------------------------------------------------------


def test_it_sends_the_query_with_the_act_clients_user_agent_and_credentials(simulator, engine_client):
    devices = query_devices_of_user(engine_client, nexthink_user="CORP\\alice", engine_label="emea")

    assert [(d.uid, d.name, d.platform) for d in devices] == [(ALICE_LAPTOP, "LAPTOP-ALICE", "windows")]
    [query] = nxql_queries(simulator)
    assert query["user"] == "portal"
    assert query["user_agent"] == "portal-test/1"
    assert query["platforms"] == ["windows"] and query["format"] == "json"
    assert query["path"] == "/_sim/engines/86acc8511251ec444d3a75bac33a23c7/2/query"


def test_it_asks_once_per_platform(simulator, engine_client):
    query_devices_of_user(engine_client, nexthink_user="CORP\\alice", platforms=["windows", "mac_os"])

    assert [q["platforms"] for q in nxql_queries(simulator)] == [["windows"], ["mac_os"]]


def test_the_engine_answers_with_its_own_devices_only(simulator, engine_client):
    amer = engine_client.for_base_url(simulator.url + "/_sim/engines/a4690014774dcc32b919c27d616166f7")

    assert query_devices_of_user(amer, nexthink_user="CORP\\alice") == []
    assert [d.name for d in query_devices_of_user(amer, nexthink_user="bob@corp.example")] == ["DESKTOP-BOB"]


def test_wrong_nxql_credentials_are_classified_as_the_act_api_does(simulator):
    client = ActClient(base_url=simulator.url, username="portal", password="portal-demo").for_base_url(
        simulator.url, username="portal", password="wrong"
    )

    with pytest.raises(ActApiError) as caught:
        query_devices_of_user(client, nexthink_user="CORP\\alice")

    assert caught.value.reason == "UNAUTHORIZED"
    assert nxql_queries(simulator) == []


def test_an_answer_of_the_wrong_shape_raises_a_shape_error(simulator, engine_client):
    requests.post(simulator.url + "/_sim/nxql", json={"answer": {"rows": []}}, timeout=5).raise_for_status()

    with pytest.raises(NxqlShapeError):
        query_devices_of_user(engine_client, nexthink_user="CORP\\alice")


def test_the_simulator_refuses_what_it_does_not_understand(simulator):
    auth = ("portal", "portal-demo")
    url = simulator.url + "/2/query"
    good = DEVICES_OF_USER_QUERY

    assert (
        requests.get(
            url, params={"query": good, "platform": "windows", "format": "csv"}, auth=auth, timeout=5
        ).status_code
        == 400
    )
    assert (
        requests.get(
            url, params={"query": good, "platform": "linux", "format": "json"}, auth=auth, timeout=5
        ).status_code
        == 400
    )
    assert (
        requests.get(
            url, params={"query": good[:-3], "platform": "windows", "format": "json"}, auth=auth, timeout=5
        ).status_code
        == 400
    )
    assert (
        requests.get(url, params={"query": good, "platform": "windows", "format": "json"}, timeout=5).status_code == 401
    )
    unknown_engine = simulator.url + "/_sim/engines/" + "0" * 32 + "/2/query"
    assert (
        requests.get(
            unknown_engine, params={"query": good, "platform": "windows", "format": "json"}, auth=auth, timeout=5
        ).status_code
        == 404
    )


def test_the_nxql_client_keeps_the_act_clients_tls_settings(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    act = ActClient(base_url="https://portal.example", username="u", password="p", verify=str(bundle))

    engine = act.for_base_url("https://engine.example:1671/", username="n", password="q", default_timeout=7)

    assert engine.base_url == "https://engine.example:1671"
    assert engine.session.verify == str(bundle)
    assert engine.session.trust_env is False
    assert engine.session.headers["User-Agent"] == act.session.headers["User-Agent"]
    assert engine.session.auth == ("n", "q") and act.session.auth == ("u", "p")
    assert engine.default_timeout == 7 and engine.connect_timeout == act.connect_timeout
    assert engine.session is not act.session
