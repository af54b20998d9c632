"""The client's checks before sending: a request Nexthink would refuse never leaves the portal."""

import pytest

from actions.nexthink.classic.client import ActClient
from actions.nexthink.errors import API_ERROR_STATUS, WHAT_HAPPENED, ActInputError, ErrorKind
from actions.nexthink.http import classify_http_error

ACTION = "07844969-1889-4de3-9026-020af94be855"
DEVICE = "da2add909a144e8235453f88dc45172f"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"remote_action_uid": "07844969"}, "GUID"),
        ({"device_uids": []}, "device UID is needed"),
        ({"device_uids": DEVICE}, "device UID is needed"),
        ({"device_uids": ["LAPTOP-ALICE"]}, "32 hexadecimal"),
        ({"device_uids": [DEVICE + "0"]}, "32 hexadecimal"),
        ({"timeout_seconds": 0}, "positive whole number"),
        ({"timeout_seconds": 2.5}, "positive whole number"),
        ({"timeout_seconds": True}, "positive whole number"),
        ({"engine_uids": ["engine-1"]}, "Engine UID"),
        ({"params": {"Mode": 3}}, "must be a string"),
        ({"params": {"": "x"}}, "non-empty"),
    ],
)
def test_it_refuses_invalid_input_without_sending(simulator, sim_requests, kwargs, fragment):
    client = ActClient(base_url=simulator.url, username="portal", password="portal-demo")
    call = {"remote_action_uid": ACTION, "device_uids": [DEVICE]} | kwargs

    with pytest.raises(ActInputError, match=fragment) as info:
        client.run(**call)

    assert info.value.kind is ErrorKind.PERMANENT
    assert sim_requests() == []


def test_every_documented_code_has_an_employee_sentence():
    assert len(API_ERROR_STATUS) == 14
    for code in API_ERROR_STATUS:
        assert WHAT_HAPPENED[code].endswith(".")


@pytest.mark.parametrize(("code", "status"), sorted(API_ERROR_STATUS.items()))
def test_it_gives_each_documented_code_its_kind(code, status):
    error = classify_http_error(status, {"code": code, "error": "text"})

    expected = ErrorKind.UNKNOWN if code == "INTERNAL_ERROR" else ErrorKind.PERMANENT
    assert (error.code, error.http_status, error.kind, error.message) == (code, status, expected, "text")


def test_it_uses_the_read_timeout_of_nexthink_plus_a_margin(simulator, monkeypatch):
    client = ActClient(
        base_url=simulator.url, username="portal", password="portal-demo", connect_timeout=3, read_margin=7
    )
    seen = {}
    original = client.session.request

    def spy(method, url, **kwargs):  # the one seam a unit test may watch
        seen["timeout"] = kwargs["timeout"]
        return original(method, url, **kwargs)

    monkeypatch.setattr(client.session, "request", spy)
    client.run(remote_action_uid=ACTION, device_uids=[DEVICE], timeout_seconds=20)

    timeout = seen["timeout"]
    assert (timeout.connect_timeout, timeout.read_timeout, timeout.total) == (3, 27, 30)


def test_it_verifies_tls_unless_told_not_to():
    assert ActClient(base_url="https://nx", username="u", password="p").session.verify is True
    assert ActClient(base_url="https://nx", username="u", password="p", verify="/ca.pem").session.verify == "/ca.pem"
