"""Each platform's demo keeps its own data: `bin/demo` then `NEXTHINK_PLATFORM=infinity bin/demo` and back.

The demo's start (migrate, then load_demo) runs as its own process in a copy of the project, with the
environment bin/demo gives and no PORTAL_VAR_DIR, so the folder that settings.py picks is the one used.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from portal import config

ROOT = Path(__file__).resolve().parent.parent

DEMO_START = textwrap.dedent(
    """
    import json, sys
    import django
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from actions.models import Device, RemoteAction

    call_command("migrate", interactive=False, verbosity=0)
    call_command("load_demo", stdout=None)
    if "--curate" in sys.argv:
        RemoteAction.objects.filter(slug="clear-teams-cache").update(name="Clear Teams cache (IT's version)")
    actions = RemoteAction.objects.order_by("name")
    print(json.dumps({
        "var_dir": str(settings.VAR_DIR),
        "database": str(settings.DATABASES["default"]["NAME"]),
        "mail": str(settings.MAILERS["default"]),
        "classic_actions": [a.name for a in actions if not a.nql_id],
        "infinity_actions": [a.name for a in actions if a.nql_id],
        "alice_devices": list(Device.objects.filter(owner__username="alice").values_list("name", flat=True)),
    }))
    """
)


def demo_start(project: Path, platform: str, *extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env |= {"DJANGO_SETTINGS_MODULE": "portal.settings", "DEBUG": "true", "TICKETING": "servicenow"}
    if platform != "classic":
        env["NEXTHINK_PLATFORM"] = platform
    result = subprocess.run(
        [sys.executable, "-c", DEMO_START, *extra], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_switching_platforms_back_and_forth_shows_each_demo_as_it_was(tmp_path):
    project = tmp_path / "clone"
    for name in ("portal", "actions", "simulators"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    var = project / "var"

    classic = demo_start(project, "classic", "--curate")
    infinity = demo_start(project, "infinity")
    classic_again = demo_start(project, "classic")

    # Classic keeps var/ as before this change; Infinity has a folder of its own, key and mail included.
    assert (classic["var_dir"], classic["database"]) == (str(var), str(var / "portal.sqlite3"))
    assert (infinity["var_dir"], infinity["database"]) == (str(var / "infinity"), str(var / "infinity/portal.sqlite3"))
    assert str(var / "infinity" / "mail") in infinity["mail"] and str(var / "mail") in classic["mail"]
    assert (var / "dev-secret-key").exists() and (var / "infinity" / "dev-secret-key").exists()
    assert (var / "infinity" / "broker" / "queue").is_dir()
    # The Infinity demo has none of the classic demo's actions, and no device rows of its own:
    # alice's LAPTOP-ALICE comes once, through NQL.
    assert infinity["classic_actions"] == [] and infinity["infinity_actions"]
    assert infinity["alice_devices"] == []
    # Back on classic: its own actions, the curator's change still there, nothing from Infinity.
    assert "Clear Teams cache (IT's version)" in classic_again["classic_actions"]
    assert classic_again["classic_actions"] == classic["classic_actions"]
    assert classic_again["infinity_actions"] == [] and classic_again["alice_devices"] == ["LAPTOP-ALICE"]


def test_the_default_var_folder_is_per_platform_for_the_demo_only(monkeypatch, tmp_path):
    monkeypatch.setenv("NEXTHINK_PLATFORM", "Infinity")
    assert config.default_var_dir(tmp_path, debug=True) == tmp_path / "var" / "infinity"
    assert config.default_var_dir(tmp_path, debug=False) == tmp_path / "var"  # production keeps ./var
    monkeypatch.setenv("NEXTHINK_PLATFORM", "classic")
    assert config.default_var_dir(tmp_path, debug=True) == tmp_path / "var"
    monkeypatch.delenv("NEXTHINK_PLATFORM")
    assert config.default_var_dir(tmp_path, debug=True) == tmp_path / "var"
