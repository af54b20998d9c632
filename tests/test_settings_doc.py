"""README's configuration tables are made from portal/settings.py, and the two never differ."""

import os
import re
import subprocess
import sys

from actions.management.commands.settings_table import BEGIN, END
from tests.worker import ROOT


def tables(**env) -> str:
    """The tables as `manage.py settings_table` prints them, in an environment with only `env` set."""
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "portal.settings"} | env
    command = [sys.executable, "manage.py", "settings_table"]
    done = subprocess.run(command, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def readme_tables() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split(BEGIN, 1)[1].split(END, 1)[0].strip() + "\n"


def test_readme_shows_exactly_the_documented_settings():
    generated = tables(DEBUG="true", PORTAL_VAR_DIR="/tmp/portal-settings-doc")

    assert generated.count("| `") > 80
    assert readme_tables() == generated, "run: DEBUG=true .venv/bin/python manage.py settings_table --write"


def test_the_tables_do_not_depend_on_the_machine_they_are_made_on():
    production = {
        "DEBUG": "false",
        "SECRET_KEY": "x" * 50,
        "PORTAL_VAR_DIR": "/tmp/portal-settings-doc",
        "NEXTHINK_PLATFORM": "infinity",
        "NEXTHINK_SIMULATOR": "true",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "TICKETING": "email",
        "TICKETING_EMAIL_TO": "desk@corp.example",
        "EMAIL_URL": "smtp://mail.corp.example:25",
        "PORTAL_BASE_URL": "https://portal.corp.example",
    }

    assert tables(**production) == tables(DEBUG="true", PORTAL_VAR_DIR="/tmp/portal-settings-doc")


def test_every_documented_variable_is_in_env_example():
    example = (ROOT / ".env.example").read_text()
    documented = re.findall(r"^\| `([A-Z_]+)`", readme_tables(), flags=re.MULTILINE)

    missing = [name for name in documented if not re.search(rf"^#? ?{name}=", example, flags=re.MULTILINE)]
    assert documented and missing == []
