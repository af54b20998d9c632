"""Ticketing and e-mail settings fail loud, naming what is missing."""

import pytest

from tests.test_config import start

REAL_NEXTHINK = {
    "NEXTHINK_PORTAL_URL": "https://nexthink.corp.example",
    "NEXTHINK_USERNAME": "u",
    "NEXTHINK_PASSWORD": "p",
}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TICKETING": "jira"}, "TICKETING must be one of"),
        ({"TICKETING": "webhook", "TICKETING_WEBHOOK_URL": "desk.corp.example/hook"}, "TICKETING_WEBHOOK_URL"),
        ({"TICKETING": "webhook", "TICKETING_WEBHOOK_URL": "https://desk.corp.example/h"}, "TICKETING_WEBHOOK_SECRET"),
        ({"TICKETING": "email"}, "TICKETING_EMAIL_TO"),
        ({"TICKETING": "servicenow", "DEBUG": "false", **REAL_NEXTHINK}, "SERVICENOW_INSTANCE_URL is required"),
        (
            {
                "TICKETING": "servicenow",
                "SERVICENOW_INSTANCE_URL": "https://x.service-now.com",
                "SERVICENOW_AUTH": "oauth",
            },
            "SERVICENOW_CLIENT_ID",
        ),
        ({"TICKETING": "servicenow", "SERVICENOW_INSTANCE_URL": "https://x.service-now.com"}, "SERVICENOW_USERNAME"),
        ({"SERVICENOW_CALLER_FIELD": "phone"}, "SERVICENOW_CALLER_FIELD"),
        ({"EMAIL_URL": "carrier-pigeon://loft"}, "EMAIL_URL"),
        (
            {
                "TICKETING": "webhook",
                "TICKETING_WEBHOOK_URL": "https://desk.corp.example/h",
                "TICKETING_WEBHOOK_SECRET": "s",
                "DEBUG": "false",
                **REAL_NEXTHINK,
            },
            "PORTAL_BASE_URL is required with TICKETING=webhook",
        ),
    ],
)
def test_it_stops_start_up_naming_the_ticketing_variable(env, named):
    result = start(env | {"SECRET_KEY": "x" * 50})

    assert result.returncode != 0
    assert named in result.stderr.strip().splitlines()[-1]


def test_servicenow_in_debug_defaults_to_the_simulator():
    result = start({"TICKETING": "servicenow"})
    assert result.returncode == 0, result.stderr
