"""Infinity settings: the simulator by default with DEBUG, and loud about what production lacks."""

import pytest

from tests.test_config import start

INFINITY = {"NEXTHINK_PLATFORM": "infinity"}
REAL = INFINITY | {
    "NEXTHINK_API_URL": "https://acme.api.eu.nexthink.cloud",
    "NEXTHINK_TOKEN_URL": "https://acme-login.eu.nexthink.cloud/oauth2/default/v1/token",
    "NEXTHINK_CLIENT_ID": "portal-client",
    "NEXTHINK_CLIENT_SECRET": "s3cret",
    "NEXTHINK_NQL_EXECUTIONS_QUERY": "#portal_executions",
}


def test_infinity_talks_to_the_simulator_when_nothing_is_set():
    result = start(INFINITY)

    assert result.returncode == 0, result.stderr


def test_a_real_infinity_set_up_starts():
    result = start(REAL | {"DEBUG": "false", "ALLOWED_HOSTS": "portal.corp.example"})

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"NEXTHINK_PLATFORM": "cloud"}, "NEXTHINK_PLATFORM"),
        (INFINITY | {"DEBUG": "false"}, "NEXTHINK_API_URL"),
        ({**REAL, "NEXTHINK_CLIENT_SECRET": ""}, "NEXTHINK_CLIENT_SECRET"),
        ({**REAL, "NEXTHINK_TOKEN_URL": ""}, "NEXTHINK_TOKEN_URL"),
        ({**REAL, "NEXTHINK_TOKEN_URL": "acme-login.eu.nexthink.cloud"}, "NEXTHINK_TOKEN_URL"),
        ({**REAL, "NEXTHINK_NQL_EXECUTIONS_QUERY": ""}, "NEXTHINK_NQL_EXECUTIONS_QUERY"),
        ({**REAL, "NEXTHINK_NQL_DEVICES_QUERY": "#Bad-Id"}, "NEXTHINK_NQL_DEVICES_QUERY"),
        ({**REAL, "NEXTHINK_EXPIRES_MINUTES": "30"}, "NEXTHINK_EXPIRES_MINUTES"),
    ],
)
def test_it_stops_start_up_naming_the_missing_or_malformed_variable(env, named):
    result = start(env)

    assert result.returncode != 0
    assert named in result.stderr.strip().splitlines()[-1]


def test_the_secret_never_appears_in_a_start_up_error():
    result = start({**REAL, "NEXTHINK_TOKEN_URL": ""})

    assert "s3cret" not in result.stderr
