"""`manage.py act_run` and `act_status` on Nexthink Infinity: try an action by hand, then follow it up."""

import json

import pytest

from tests.factories import run_command
from tests.test_infinity_contract import ALICE_LAPTOP, EXECUTE


def test_act_run_prints_the_request_id_as_json(use_infinity):
    code, out, _ = run_command(
        "act_run",
        "--action",
        "#restart_windows_service",
        "--device",
        ALICE_LAPTOP,
        "--param",
        "ServiceName=Spooler",
        "--expires-minutes",
        "90",
        "--json",
    )

    assert code == 0
    document = json.loads(out)
    assert set(document) == {"request_id", "expires_in_minutes"} and document["expires_in_minutes"] == 90
    [received] = use_infinity.requests(EXECUTE)
    assert received["body"]["params"] == {"ServiceName": "Spooler"}
    assert received["body"]["triggerInfo"]["externalSource"] == "Fix my device"
    assert received["body"]["triggerInfo"]["reason"].startswith("Tried by hand with manage.py act_run")


def test_act_run_uses_the_configured_expiry_by_default(use_infinity, settings):
    settings.NEXTHINK_EXPIRES_MINUTES = 240

    code, out, _ = run_command("act_run", "--action", "#clear_teams_cache", "--device", ALICE_LAPTOP, "--json")

    assert code == 0 and json.loads(out)["expires_in_minutes"] == 240


def test_act_run_reports_an_api_error_with_its_reason_and_exits_1(use_infinity):
    code, out, _ = run_command("act_run", "--action", "#collect_inventory", "--device", ALICE_LAPTOP, "--json")

    assert code == 1
    assert json.loads(out) == {
        "error": {
            "code": "API_NOT_ENABLED",
            "reason": "API_NOT_ENABLED",
            "message": "Remote action #collect_inventory cannot be triggered through the API.",
            "http_status": 400,
            "kind": "permanent",
        }
    }


def test_act_run_reports_a_transport_error_with_null_code(use_infinity):
    use_infinity.fault("*", "html_503")

    code, out, _ = run_command("act_run", "--action", "#clear_teams_cache", "--device", ALICE_LAPTOP, "--json")

    error = json.loads(out)["error"]
    assert code == 1 and (error["code"], error["kind"]) == (None, "retryable")


@pytest.mark.parametrize(
    "args",
    [
        ["--action", "clear_teams_cache", "--device", ALICE_LAPTOP],
        ["--action", "#clear_teams_cache"],
        ["--action", "#clear_teams_cache", "--device", ALICE_LAPTOP, "--expires-minutes", "30"],
        ["--action", "#clear_teams_cache", "--device", ALICE_LAPTOP, "--expires-minutes", "soon"],
        ["--action", "#clear_teams_cache", "--device", ALICE_LAPTOP, "--timeout", "30"],
        ["--action", "#clear_teams_cache", "--device", ALICE_LAPTOP, "--param", "novalue"],
    ],
)
def test_act_run_exits_2_on_bad_arguments_and_sends_nothing(use_infinity, args):
    code, out, _ = run_command("act_run", *args, "--json")

    assert code == 2
    assert json.loads(out)["error"]["kind"] == "permanent"
    assert use_infinity.requests() == []


def test_act_run_on_classic_refuses_expires_minutes(use_simulator, sim_requests):
    code, out, _ = run_command(
        "act_run",
        "--action",
        "07844969-1889-4de3-9026-020af94be855",
        "--device",
        "da2add909a144e8235453f88dc45172f",
        "--expires-minutes",
        "60",
        "--json",
    )

    assert code == 2 and sim_requests() == []


def test_act_status_follows_a_request_to_its_outcome(use_infinity):
    _, out, _ = run_command("act_run", "--action", "#repair_vpn", "--device", ALICE_LAPTOP, "--json")
    request_id = json.loads(out)["request_id"]

    code, waiting, _ = run_command("act_status", "--request", request_id, "--device", ALICE_LAPTOP, "--json")
    use_infinity.advance(10)
    code_done, done, _ = run_command("act_status", "--request", request_id, "--device", ALICE_LAPTOP, "--json")

    assert (code, code_done) == (0, 0)
    assert json.loads(waiting)["executions"][0]["status"] == "waiting"
    [execution] = json.loads(done)["executions"]
    assert execution["device"] == ALICE_LAPTOP
    assert (execution["status"], execution["raw_status"]) == ("failure", "failure")
    assert execution["status_details"] == "The VPN client is not installed on this device."
    assert execution["outputs"] == {"Log": "vpncli not found"}


def test_act_status_prints_plain_lines_without_json(use_infinity):
    _, out, _ = run_command("act_run", "--action", "#clear_teams_cache", "--device", ALICE_LAPTOP, "--json")
    use_infinity.advance(10)

    code, out, _ = run_command("act_status", "--request", json.loads(out)["request_id"])

    assert code == 0
    assert out.splitlines() == [f"{ALICE_LAPTOP}  success (success)", "    CacheSizeMB = 812"]


def test_act_status_reports_an_api_error_and_exits_1(use_infinity):
    use_infinity.fault("nql", "answer", status=403, body={"message": "No NQL for you", "code": 403})

    code, out, _ = run_command("act_status", "--request", "r-1", "--json")

    error = json.loads(out)["error"]
    assert code == 1 and (error["http_status"], error["kind"], error["message"]) == (403, "permanent", "No NQL for you")


@pytest.mark.parametrize("args", [[], ["--request", "r-1", "--device", "a b"]])
def test_act_status_exits_2_on_bad_arguments_and_sends_nothing(use_infinity, args):
    code, out, _ = run_command("act_status", *args, "--json")

    assert code == 2 and json.loads(out)["error"]["kind"] == "permanent"
    assert use_infinity.requests() == []


def test_act_status_needs_the_infinity_platform(use_simulator):
    code, out, _ = run_command("act_status", "--request", "r-1", "--json")

    assert code == 2 and "NEXTHINK_PLATFORM=infinity" in json.loads(out)["error"]["message"]
