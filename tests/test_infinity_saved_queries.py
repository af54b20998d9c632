"""The saved NQL queries as Nexthink documents them: `$name` parameters, unquoted, only after `| where`.

Against the simulator over real HTTP: its default queries are the README's, word for word; a saved
query written with another syntax is refused with a 400 naming the problem, which the portal sees as a
permanent error; the parameters sent must be those the query declares.
"""

import re
from pathlib import Path

import pytest

from actions.nexthink.errors import ErrorKind
from simulators.infinity import load_config, nql_problem
from tests.factories import error_of
from tests.test_infinity_contract import ALICE_LAPTOP, NQL, client_for, run_on

README = Path(__file__).resolve().parent.parent / "README.md"
ENV_EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"


def readme_queries() -> dict[str, str]:
    """Each query id shown in README's "NQL queries" section, with the text of the block after it."""
    section = README.read_text().split("### The NQL queries an administrator saves in Nexthink", 1)[1]
    section = section.split("\n### ", 1)[0]
    return {
        m[0]: m[1].strip() for m in re.findall(r"`(#[a-z0-9_]+)`[^`]*?(?:`[^`]*`[^`]*?)*?```\n(.*?)```", section, re.S)
    }


def test_the_default_saved_queries_have_their_nql_text_in_the_simulator(infinity_sim):
    queries = infinity_sim.saved_queries()

    assert queries["devices"]["id"] == "#portal_devices_of_user"
    assert "| where device.login.last_login_user_name == $user_name" in queries["devices"]["nql"]
    assert queries["executions"]["id"] == "#portal_remote_action_executions"
    assert "| where request_id == $request_id" in queries["executions"]["nql"]


def test_readme_shows_the_simulators_queries_word_for_word():
    defaults = load_config()["saved_queries"]

    assert readme_queries() == {q["id"]: q["nql"] for q in defaults.values()}


def test_no_query_shown_to_an_admin_uses_another_parameter_syntax():
    for text in (README.read_text(), ENV_EXAMPLE.read_text()):
        for name in ("request_id", "device_uid", "user_name"):
            assert "{{" + name not in text and f'"${name}"' not in text
    for nql in readme_queries().values():
        assert nql_problem(nql) is None


@pytest.mark.parametrize(
    ("nql", "problem"),
    [
        (
            'devices | where device.login.last_login_user_name == "{{user_name}}" | list device.name',
            "{{user_name}}",
        ),
        ("devices | where device.login.last_login_user_name == {{user_name}} | list device.name", "{{user_name}}"),
        ('devices | where device.login.last_login_user_name == "$user_name" | list device.name', '"$user_name"'),
        ("devices | where device.login.last_login_user_name == '$user_name' | list device.name", "'$user_name'"),
        ("devices | where device.name == $user_name | list device.name, $user_name", "outside a where clause"),
        ("devices during past $user_name | list device.name", "outside a where clause"),
    ],
)
def test_the_simulator_names_what_is_wrong_in_a_saved_query(nql, problem):
    assert problem in nql_problem(nql)


def test_a_saved_query_with_another_syntax_is_refused_and_the_portal_sees_a_permanent_error(infinity_sim):
    accepted = infinity_sim.set_saved_query(
        "devices",
        'devices during past 30d | where device.login.last_login_user_name == "{{user_name}}" | list device.name',
    )
    assert accepted.status_code == 200  # saved as an admin could: refused when it runs, as Nexthink would

    error = error_of(lambda: client_for(infinity_sim).devices_of_user("CORP\\alice"))

    assert (error.http_status, error.kind) == (400, ErrorKind.PERMANENT)
    assert "{{user_name}}" in error.message and "$user_name" in error.message
    assert len(infinity_sim.requests(NQL)) == 1


def test_a_quoted_parameter_is_refused(infinity_sim):
    infinity_sim.set_saved_query(
        "devices",
        'devices during past 30d | where device.login.last_login_user_name == "$user_name" | list device.name',
    )

    error = error_of(lambda: client_for(infinity_sim).devices_of_user("CORP\\alice"))

    assert error.http_status == 400 and "without quotes" in error.message


def test_the_parameters_sent_must_be_those_the_query_declares(infinity_sim):
    infinity_sim.set_saved_query(
        "devices", "devices during past 30d | where device.login.last_login_user_name == $login | list device.name"
    )

    error = error_of(lambda: client_for(infinity_sim).devices_of_user("CORP\\alice"))

    assert error.http_status == 400
    assert "$login" in error.message and "user_name" in error.message


def test_the_executions_query_is_asked_with_the_request_id_only_and_the_client_keeps_the_device(infinity_sim):
    client = client_for(infinity_sim)
    accepted = client.execute(
        remote_action_id="#clear_teams_cache", devices=[ALICE_LAPTOP, "0e9d8c7b-6a5f-4e4d-9c3b-2a1f0e9d8c7b"]
    )

    [execution] = client.executions(accepted.request_id, ALICE_LAPTOP)

    assert execution.device == ALICE_LAPTOP
    [query] = infinity_sim.requests(NQL)
    assert query["body"]["parameters"] == {"request_id": accepted.request_id}


def test_a_control_can_replace_a_query_and_the_reset_restores_the_default(simulator, infinity_sim):
    import requests

    infinity_sim.set_saved_query(
        "executions", "remote_action.executions | where request_id == $request_id | list status"
    )
    assert infinity_sim.saved_queries()["executions"]["nql"].endswith("| list status")

    requests.post(simulator.url + "/_sim/reset", timeout=5)

    assert infinity_sim.saved_queries()["executions"]["nql"] == load_config()["saved_queries"]["executions"]["nql"]
    run_on(client_for(infinity_sim))


def test_a_control_refuses_an_unknown_saved_query_name(infinity_sim):
    answer = infinity_sim.set_saved_query("tickets", "devices | where device.name == $name | list device.name")

    assert answer.status_code == 400
