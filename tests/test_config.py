"""Settings fail loud: a malformed variable stops start-up with a message naming it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal import config

ROOT = Path(__file__).resolve().parent.parent


def start(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Load the real settings in a fresh interpreter, as `manage.py` would."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NEXTHINK_", "DATABASE_", "CELERY_"))}
    clean |= {"DJANGO_SETTINGS_MODULE": "portal.settings", "SECRET_KEY": "x" * 50, "DEBUG": "true"} | env
    code = "import django; django.setup(); from django.conf import settings; print(settings.NEXTHINK_PORTAL_URL)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"NEXTHINK_VERIFY_TLS": "sometimes"}, "NEXTHINK_VERIFY_TLS"),
        (
            {"NEXTHINK_PORTAL_URL": "nexthink.corp.example", "NEXTHINK_USERNAME": "u", "NEXTHINK_PASSWORD": "p"},
            "NEXTHINK_PORTAL_URL",
        ),
        ({"NEXTHINK_DEFAULT_TIMEOUT_SECONDS": "sixty"}, "NEXTHINK_DEFAULT_TIMEOUT_SECONDS"),
        ({"CELERY_BROKER_URL": "localhost:6379"}, "CELERY_BROKER_URL"),
        ({"DATABASE_URL": "mongodb://db/portal"}, "DATABASE_URL"),
        ({"CSRF_TRUSTED_ORIGINS": "portal.corp.example"}, "CSRF_TRUSTED_ORIGINS"),
    ],
)
def test_it_stops_start_up_naming_the_malformed_variable(env, named):
    result = start(env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr.strip().splitlines()[-1]


def test_it_requires_a_secret_key_when_debug_is_off():
    result = start({"SECRET_KEY": "", "DEBUG": "false"})

    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_it_requires_credentials_for_a_real_nexthink():
    result = start({"NEXTHINK_PORTAL_URL": "https://nexthink.corp.example"})

    assert result.returncode != 0
    assert "NEXTHINK_USERNAME and NEXTHINK_PASSWORD" in result.stderr


def test_production_refuses_to_talk_to_the_simulator_by_default():
    result = start({"DEBUG": "false"})

    assert result.returncode != 0
    assert "NEXTHINK_PORTAL_URL is required when DEBUG is off" in result.stderr


def test_it_reads_a_dot_env_file_like_env_example(tmp_path):
    """.env.example, copied to .env and filled in, is a working configuration."""
    project = tmp_path / "copy"
    for name in ("portal", "actions"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    text = (ROOT / ".env.example").read_text()
    text = text.replace("SECRET_KEY=\n", "SECRET_KEY=from-the-dot-env-file-" + "k" * 40 + "\n")
    text = text.replace("NEXTHINK_PORTAL_URL=\n", "NEXTHINK_PORTAL_URL=https://nexthink.corp.example\n")
    text = text.replace("NEXTHINK_USERNAME=\n", "NEXTHINK_USERNAME=portal-api\n")
    text = text.replace("NEXTHINK_PASSWORD=\n", "NEXTHINK_PASSWORD=from-a-vault\n")
    (project / ".env").write_text(text + "PORTAL_VAR_DIR=" + str(tmp_path / "var") + "\n")
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DEBUG, s.NEXTHINK_PORTAL_URL, s.SECRET_KEY[:20], s.VAR_DIR, s.DATABASES['default']['NAME'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env=clean | {"DJANGO_SETTINGS_MODULE": "portal.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    debug, url, key, var_dir, database = result.stdout.split()
    assert (debug, url, key) == ("False", "https://nexthink.corp.example", "from-the-dot-env-fil")
    assert var_dir == str(tmp_path / "var") and database == str(tmp_path / "var" / "portal.sqlite3")


def test_it_talks_to_the_simulator_when_no_nexthink_is_configured():
    result = start({})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "http://127.0.0.1:8765"


def test_it_reads_the_password_from_a_file(tmp_path, monkeypatch):
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("NEXTHINK_PASSWORD_FILE", str(secret))
    monkeypatch.delenv("NEXTHINK_PASSWORD", raising=False)

    assert config.get_secret("NEXTHINK_PASSWORD", doc="test") == "from-a-file"


def test_it_refuses_a_password_and_a_password_file_together(tmp_path, monkeypatch):
    monkeypatch.setenv("NEXTHINK_PASSWORD_FILE", str(tmp_path / "password"))
    monkeypatch.setenv("NEXTHINK_PASSWORD", "inline")

    with pytest.raises(ImproperlyConfigured, match="not both"):
        config.get_secret("NEXTHINK_PASSWORD", doc="test")


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("0", False), ("Yes", True), ("off", False), ("", True)])
def test_it_reads_booleans_strictly(monkeypatch, raw, value):
    monkeypatch.setenv("SOME_FLAG", raw)

    assert config.get_bool("SOME_FLAG", True, doc="test") is value


def deploy_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    """`manage.py check --deploy` failing on warnings, with `env` but without HTTPS."""
    env = {name: value for name, value in env.items() if name != "HTTPS"}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_pass_the_deploy_checks():
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DEBUG": "false",
        "SECRET_KEY": "k" * 20 + "Qx7-pR2_vT9#mZ4!wL6&" + "a1b2c3d4e5f6g7h8i9j0",
        "ALLOWED_HOSTS": "portal.corp.example",
        "CSRF_TRUSTED_ORIGINS": "https://portal.corp.example",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "NEXTHINK_PORTAL_URL": "https://nexthink.corp.example",
        "NEXTHINK_USERNAME": "portal-api",
        "NEXTHINK_PASSWORD": "from-a-vault",
    }
    result = deploy_check(env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# --- Sign-in ----------------------------------------------------------------------------------------
OIDC_ENV = {
    "OIDC_ISSUER": "https://login.corp.example/tenant/v2.0",
    "OIDC_CLIENT_ID": "portal",
    "OIDC_CLIENT_SECRET": "s",
}


def settings_of(env: dict[str, str], *names: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NEXTHINK_", "DATABASE_", "CELERY_", "OIDC_"))}
    clean |= {"DJANGO_SETTINGS_MODULE": "portal.settings", "SECRET_KEY": "x" * 50, "DEBUG": "true"} | env
    code = "import django; django.setup(); from django.conf import settings as s; " + "; ".join(
        f"print(repr(s.{name}))" for name in names
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OIDC_ISSUER": "login.corp.example"}, "OIDC_ISSUER"),
        (OIDC_ENV | {"OIDC_ISSUER": "http://login.corp.example"}, "OIDC_ISSUER must use https"),
        ({"OIDC_ISSUER": "https://login.corp.example"}, "OIDC_CLIENT_ID and OIDC_CLIENT_SECRET"),
        (OIDC_ENV | {"OIDC_SCOPES": "email profile"}, "OIDC_SCOPES"),
        (OIDC_ENV | {"OIDC_SIGN_ALGO": "HS256"}, "OIDC_SIGN_ALGO"),
        ({"OIDC_GROUP_MAP": "=Finance"}, "OIDC_GROUP_MAP"),
        ({"LOCAL_LOGIN": "perhaps"}, "LOCAL_LOGIN"),
        ({"SESSION_IDLE_TIMEOUT_SECONDS": "10"}, "SESSION_IDLE_TIMEOUT_SECONDS"),
        ({"REMOTE_USER_HEADER": "X-Remote-User"}, "REMOTE_USER_PROXY_ADDRESSES"),
    ],
)
def test_it_stops_start_up_on_a_malformed_sign_in_setting(env, named):
    result = start(env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and named in result.stderr.strip().splitlines()[-1]


def test_without_a_provider_sign_in_is_local_only():
    assert settings_of({"DEBUG": "false", "NEXTHINK_SIMULATOR": "true"}, "OIDC_ENABLED", "LOCAL_LOGIN") == [
        "False",
        "True",
    ]


def test_with_a_provider_production_turns_local_sign_in_off_and_the_demo_keeps_it():
    production = {"DEBUG": "false", "NEXTHINK_SIMULATOR": "true"} | OIDC_ENV

    assert settings_of(production, "OIDC_ENABLED", "LOCAL_LOGIN") == ["True", "False"]
    assert settings_of(production | {"LOCAL_LOGIN": "true"}, "LOCAL_LOGIN") == ["True"]
    assert settings_of(OIDC_ENV, "LOCAL_LOGIN") == ["True"]  # DEBUG


def test_with_a_provider_sign_out_may_end_on_its_page():
    [form_action] = settings_of(OIDC_ENV, "SECURE_CSP['form-action']")

    assert form_action == "[<CSP.SELF: \"'self'\">, 'https://login.corp.example']"


def test_the_group_map_reads_pairs_and_bare_names(monkeypatch):
    monkeypatch.setenv("SOME_MAP", " 0b1c-id = Finance , Field staff ")

    assert config.get_map("SOME_MAP", doc="test") == {"0b1c-id": "Finance", "Field staff": "Field staff"}


def test_production_settings_with_a_provider_pass_the_deploy_checks():
    env = (
        os.environ
        | OIDC_ENV
        | {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DEBUG": "false",
            "SECRET_KEY": "k" * 20 + "Qx7-pR2_vT9#mZ4!wL6&" + "a1b2c3d4e5f6g7h8i9j0",
            "ALLOWED_HOSTS": "portal.corp.example",
            "NEXTHINK_SIMULATOR": "true",
        }
    )
    result = deploy_check(env)

    assert result.returncode == 0, result.stdout + result.stderr


# --- Database ---------------------------------------------------------------------------------------
POSTGRES = {"DATABASE_URL": "postgres://portal@db.corp.example:5432/portal"}


def test_pooled_postgresql_binds_on_the_server_so_that_queries_are_prepared():
    [options] = settings_of(POSTGRES, 'DATABASES["default"]["OPTIONS"]')

    assert "'server_side_binding': True" in options and "'prepare_threshold': 5" in options


def test_without_the_pool_nothing_is_prepared_for_a_pooler_in_between():
    [options] = settings_of(POSTGRES | {"DATABASE_POOL_MAX_SIZE": "0"}, 'DATABASES["default"].get("OPTIONS", {})')

    assert "server_side_binding" not in options and "prepare_threshold" not in options


def test_production_settings_have_no_simulator(tmp_path):
    """The simulators are for the demo and the tests: a production start has neither their commands nor their app."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEXTHINK_", "DATABASE_", "CELERY_", "DEBUG"))}
    env |= {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "SECRET_KEY": "x" * 50,
        "DEBUG": "false",
        "PORTAL_VAR_DIR": str(tmp_path),
        "NEXTHINK_PORTAL_URL": "https://nexthink.corp.example",
        "NEXTHINK_USERNAME": "portal",
        "NEXTHINK_PASSWORD": "secret",
    }
    command = [sys.executable, "manage.py", "act_simulator", "--help"]
    production = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    demo = subprocess.run(command, cwd=ROOT, env=env | {"DEBUG": "true"}, capture_output=True, text=True, timeout=60)

    assert production.returncode != 0 and "Unknown command: 'act_simulator'" in production.stderr
    assert demo.returncode == 0, demo.stderr
