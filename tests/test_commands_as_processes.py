"""Every documented management command, run the way a user runs it: `python manage.py ...` in its own process.

`call_command` skips Django's system checks and argument handling of `manage.py`; a command can pass
its tests that way and still crash from the command line. These tests start a real process from
the repository root with the test settings, pointed at this test's database (a file, committed
because of `transaction=True`) and, where Nexthink is needed, at the session's simulator.
"""

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from actions.models import Device, Engine, RemoteAction
from tests.factories import EMEA, make_action, make_parameter
from tests.worker import process_env, simulator_env

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
ACTION = "07844969-1889-4de3-9026-020af94be855"
DEVICE = "da2add909a144e8235453f88dc45172f"
UID1 = "da2add909a144e8235453f88dc45172f"
UID2 = "4423e4c059b2c72ee9382e135888bef7"


def manage(*args: str, simulator=None, password: str = "portal-demo") -> subprocess.CompletedProcess:
    env = process_env(simulator_env(simulator.url, password) if simulator is not None else None)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


# --- import_devices ------------------------------------------------------------------------------


def test_import_devices_imports_a_good_file(tmp_path, alice, bob):
    Engine.objects.create(database_uid=EMEA, name="engine-emea")
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(f"uid,name,owner,engine,\n{UID1},LAPTOP-ALICE,alice,{EMEA},\n{UID2},LAPTOP-BOB,bob,\n")

    result = manage("import_devices", str(csv_file))

    assert result.returncode == 0, result.stderr
    assert "imported 2 line(s): 2 created, 0 updated, 0 unchanged; 0 line(s) with errors" in result.stdout
    assert dict(Device.objects.values_list("uid", "owner__username")) == {UID1: "alice", UID2: "bob"}


def test_import_devices_exits_1_and_names_the_physical_lines_with_errors(tmp_path, alice):
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(
        "uid,name,owner\n"  # line 1
        f'{UID1},"LAPTOP\nALICE",alice\n'  # lines 2-3
        f"{UID2},LAPTOP-2,mallory\n"  # line 4
        f"{'1' * 32},LAPTOP-OK,alice\n"  # line 5
    )

    result = manage("import_devices", str(csv_file))

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "line 2: the name contains a control character or line break (U+000A)",
        "line 4: no user named 'mallory'",
        "CommandError: 2 line(s) were not imported; see above.",
    ]
    assert list(Device.objects.values_list("uid", flat=True)) == ["1" * 32]


def test_import_devices_dry_run_changes_nothing(tmp_path, alice):
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(f"{UID1},LAPTOP-ALICE,alice\n")

    result = manage("import_devices", str(csv_file), "--dry-run")

    assert result.returncode == 0, result.stderr
    assert "would import 1 line(s); 0 line(s) with errors" in result.stdout
    assert Device.objects.count() == 0


# --- export_catalog / import_catalog -------------------------------------------------------------


@pytest.fixture
def catalog(db):
    action = make_action(name="Clean up disk", slug="clean-up-disk", nexthink_uid=uuid.UUID(ACTION))
    make_parameter(action, name="Zone", label="Zone", display_order=5)
    make_parameter(action, name="Mode", label="Mode", display_order=5)
    return action


def test_export_catalog_writes_json_to_standard_output_and_to_a_file(catalog, tmp_path):
    printed = manage("export_catalog")
    written = manage("export_catalog", "--output", str(tmp_path / "catalog.json"))

    assert printed.returncode == 0 and written.returncode == 0, printed.stderr + written.stderr
    data = json.loads(printed.stdout)
    assert data["format"] == "fix-my-device-catalog"
    assert [p["name"] for p in data["actions"][0]["parameters"]] == ["Zone", "Mode"]
    assert json.loads((tmp_path / "catalog.json").read_text()) == data
    assert "Exported 1 action(s)" in written.stderr


def test_import_catalog_dry_run_then_import_then_nothing_to_change(catalog, tmp_path):
    path = tmp_path / "catalog.json"
    assert manage("export_catalog", "--output", str(path)).returncode == 0
    RemoteAction.objects.all().delete()

    dry = manage("import_catalog", str(path), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"[dry run] created: Clean up disk ({ACTION})" in dry.stdout
    assert RemoteAction.objects.count() == 0

    first = manage("import_catalog", str(path))
    second = manage("import_catalog", str(path))

    assert first.returncode == 0 and "1 created, 0 updated, 0 unchanged, 0 rejected." in first.stdout
    assert second.returncode == 0 and "0 created, 0 updated, 1 unchanged, 0 rejected." in second.stdout
    action = RemoteAction.objects.get(nexthink_uid=ACTION)
    assert list(action.parameters.values_list("name", flat=True)) == ["Zone", "Mode"]


def test_import_catalog_exits_1_when_an_action_is_rejected(catalog, tmp_path):
    path = tmp_path / "catalog.json"
    assert manage("export_catalog", "--output", str(path)).returncode == 0
    data = json.loads(path.read_text())
    data["actions"][0]["groups"] = ["No such group"]
    path.write_text(json.dumps(data))

    result = manage("import_catalog", str(path))

    assert result.returncode == 1
    assert "rejected: Clean up disk" in result.stdout and "no such group here: No such group" in result.stdout
    assert "CommandError: 1 action(s) rejected; see above." in result.stderr


# --- sync_engines ----------------------------------------------------------------------------------


def test_sync_engines_creates_the_engines_the_simulator_lists(simulator, db):
    result = manage("sync_engines", simulator=simulator)

    assert result.returncode == 0, result.stderr
    assert "created: 3" in result.stdout
    assert Engine.objects.filter(database_uid=EMEA, status="CONNECTED").exists()


def test_sync_engines_exits_1_when_nexthink_refuses_the_credentials(simulator, db):
    result = manage("sync_engines", simulator=simulator, password="wrong")

    assert result.returncode == 1
    assert "CommandError: Could not list the Engines" in result.stderr
    assert Engine.objects.count() == 0


# --- act_run ---------------------------------------------------------------------------------------


def test_act_run_json_prints_the_engines_answers(simulator, sim_requests):
    result = manage(
        "act_run", "--action", ACTION, "--device", DEVICE, "--engine", EMEA, "--param", "Mode=full", "--json",
        simulator=simulator,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"databaseUid": EMEA, "code": "ok", "message": ""}]
    assert sim_requests()[0]["body"]["params"] == {"Mode": "full"}


def test_act_run_json_reports_an_api_error_and_exits_1(simulator):
    result = manage(
        "act_run", "--action", "e6bb97be-0957-49e0-9922-1a684d093858", "--device", DEVICE, "--json",
        simulator=simulator,
    )  # fmt: skip

    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]["code"] == "NO_MANUAL_EXECUTION"


def test_act_run_json_exits_2_on_bad_arguments_and_sends_nothing(simulator, sim_requests):
    result = manage("act_run", "--action", "not-a-guid", "--device", DEVICE, "--json", simulator=simulator)

    assert result.returncode == 2
    assert json.loads(result.stdout)["error"]["kind"] == "permanent"
    assert sim_requests() == []


# --- act_simulator ---------------------------------------------------------------------------------


def test_act_simulator_serves_the_list_engines_api_until_interrupted():
    process = subprocess.Popen(
        [sys.executable, "manage.py", "act_simulator", "--port", "0"],
        cwd=ROOT,
        env=os.environ | {"DJANGO_SETTINGS_MODULE": "tests.settings"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("Nexthink simulator listening on http://127.0.0.1:"), process.stderr.read()
        url = line.split(" on ", 1)[1].strip()
        engines = requests.get(url + "/api/configuration/v1/engines", auth=("portal", "portal-demo"), timeout=30)
        assert engines.status_code == 200 and EMEA in {e["databaseUID"] for e in engines.json()}
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
