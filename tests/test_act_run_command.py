"""`manage.py act_run`: one run through the portal's client, for IT admins trying an action."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import EMEA, run_command

ACTION = "07844969-1889-4de3-9026-020af94be855"
DEVICE = "da2add909a144e8235453f88dc45172f"


def act_run(*args) -> tuple[int, str, str]:
    return run_command("act_run", *args)


def test_it_prints_the_engine_answers_as_json(use_simulator, sim_requests):
    code, out, _ = act_run(
        "--action",
        ACTION,
        "--device",
        DEVICE,
        "--engine",
        EMEA,
        "--param",
        "Mode=full=fast",
        "--timeout",
        "30",
        "--json",
    )

    assert code == 0
    assert json.loads(out) == [{"databaseUid": EMEA, "code": "ok", "message": ""}]
    body = sim_requests()[0]["body"]
    assert body["params"] == {"Mode": "full=fast"} and body["timeoutSeconds"] == 30


def test_it_prints_one_line_per_engine(use_simulator):
    code, out, _ = act_run("--action", ACTION, "--device", DEVICE)

    assert code == 0
    assert out.splitlines()[2].startswith("ce80dddfdb7a5c2346c4ac184b7d6a54  engine_error  Error in request")


def test_it_reports_an_api_error_as_json_and_exits_1(use_simulator):
    code, out, _ = act_run("--action", "e6bb97be-0957-49e0-9922-1a684d093858", "--device", DEVICE, "--json")

    assert code == 1
    assert json.loads(out) == {
        "error": {
            "code": "NO_MANUAL_EXECUTION",
            "message": "Remote action not configured for manual execution",
            "http_status": 400,
            "kind": "permanent",
        }
    }


def test_it_reports_a_transport_error_with_null_code(use_simulator, inject_fault):
    inject_fault("html_502")

    code, out, _ = act_run("--action", ACTION, "--device", DEVICE, "--json")

    error = json.loads(out)["error"]
    assert code == 1
    assert (error["code"], error["http_status"], error["kind"]) == (None, 502, "retryable")


@pytest.mark.parametrize(
    "args",
    [
        ["--action", "not-a-guid", "--device", DEVICE],
        ["--action", ACTION],
        ["--action", ACTION, "--device", "LAPTOP-1"],
        ["--action", ACTION, "--device", DEVICE, "--param", "novalue"],
        ["--action", ACTION, "--device", DEVICE, "--timeout", "soon"],
        ["--action", ACTION, "--device", DEVICE, "--timeout", "0"],
        ["--action", ACTION, "--device", DEVICE, "--timeout", "99999999"],
    ],
)
def test_it_exits_2_on_bad_arguments_and_sends_nothing(use_simulator, sim_requests, args):
    code, out, _ = act_run(*args, "--json")

    assert code == 2
    assert json.loads(out)["error"]["kind"] == "permanent"
    assert sim_requests() == []


def test_it_writes_errors_to_stderr_without_json(use_simulator):
    code, out, err = act_run("--action", ACTION, "--device", "LAPTOP-1")

    assert code == 2 and out == ""
    assert "32 hexadecimal" in err


@pytest.mark.parametrize("bad", [["--unknown-flag"], ["--timeout"]])
def test_it_answers_json_even_for_arguments_argparse_refuses(bad):
    """From the command line, as an IT admin's script would call it."""
    result = subprocess.run(
        [sys.executable, "manage.py", "act_run", "--action", ACTION, "--device", DEVICE, "--json", *bad],
        cwd=Path(__file__).resolve().parent.parent,
        env=os.environ | {"DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "permanent" and error["message"].startswith("Bad arguments")
