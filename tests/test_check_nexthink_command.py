"""`manage.py check_nexthink` against the simulator over real HTTP: one line per check, a plain fix for each miss."""

import json

from tests.factories import run_command


def lines(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.strip().splitlines() if ": " in line)


def test_a_good_set_up_passes_every_check(use_infinity):
    code, out, _ = run_command("check_nexthink")

    assert code == 0
    checks = lines(out)
    assert list(checks) == [
        "Token",
        "Remote actions",
        "Workflows",
        "Saved query #portal_devices_of_user",
        "Saved query #portal_remote_action_executions",
        "Saved query #portal_workflow_executions",
    ]
    assert all(line.startswith("OK") for line in checks.values())
    assert "4 of 5 can be triggered through the API" in checks["Remote actions"]


def test_it_tries_each_saved_query_with_harmless_parameters(use_infinity):
    run_command("check_nexthink")

    bodies = [r["body"] for r in use_infinity.requests("/api/v2/nql/execute")]
    assert [b["queryId"] for b in bodies] == [
        "#portal_devices_of_user",
        "#portal_remote_action_executions",
        "#portal_workflow_executions",
    ]
    assert set(bodies[0]["parameters"]) == {"user_name"} and set(bodies[1]["parameters"]) == {"request_id"}
    assert set(bodies[2]["parameters"]) == {"request_id"}
    assert use_infinity.executions() == []  # nothing was run


def test_wrong_client_credentials_are_named_and_nothing_else_is_tried(use_infinity, settings):
    settings.NEXTHINK_CLIENT_SECRET = "wrong"

    code, out, _ = run_command("check_nexthink")

    assert code == 1
    checks = lines(out)
    assert "client ID or secret is wrong" in checks["Token"]
    assert "NEXTHINK_CLIENT_ID" in checks["Token"] and "Administration > API credentials" in checks["Token"]
    assert checks["Remote actions"].startswith("not checked")
    assert use_infinity.requests("/api/v2/nql/execute") == []


def test_a_credential_without_the_nql_api_permission_fails_the_nql_checks_plainly(use_infinity, settings):
    settings.NEXTHINK_CLIENT_ID, settings.NEXTHINK_CLIENT_SECRET = "no-nql", "no-nql-demo"

    code, out, _ = run_command("check_nexthink")

    assert code == 1
    checks = lines(out)
    assert checks["Token"].startswith("OK") and checks["Remote actions"].startswith("OK")
    for query in ("#portal_devices_of_user", "#portal_remote_action_executions"):
        assert checks[f"Saved query {query}"] == (
            "The API credential may not run NQL queries: give it the NQL API permission "
            "(Administration > API credentials)."
        )


def test_a_credential_without_the_remote_actions_permission_is_told_so(use_infinity, settings):
    settings.NEXTHINK_CLIENT_ID, settings.NEXTHINK_CLIENT_SECRET = "no-act", "no-act-demo"

    code, out, _ = run_command("check_nexthink")

    assert code == 1
    assert lines(out)["Remote actions"] == (
        "The API credential may not use remote actions: give it the Remote Actions API permission "
        "(Administration > API credentials)."
    )


def test_a_missing_saved_query_is_named(use_infinity, settings):
    settings.NEXTHINK_NQL_DEVICES_QUERY = "#portal_devices_of_users"

    code, out, _ = run_command("check_nexthink")

    assert code == 1
    assert lines(out)["Saved query #portal_devices_of_users"] == (
        "Saved query #portal_devices_of_users does not exist: create it (Administration > NQL API queries) "
        'with the text in README, "The NQL queries an administrator saves in Nexthink".'
    )
    assert lines(out)["Saved query #portal_remote_action_executions"].startswith("OK")


def test_a_saved_query_with_the_wrong_syntax_is_named_with_nexthinks_reason(use_infinity):
    use_infinity.set_saved_query(
        "executions", 'remote_action.executions | where request_id == "{{request_id}}" | list status'
    )

    code, out, _ = run_command("check_nexthink")

    assert code == 1
    line = lines(out)["Saved query #portal_remote_action_executions"]
    assert line.startswith("Nexthink refused saved query #portal_remote_action_executions")
    assert "{{request_id}}" in line and "$request_id" in line


def test_an_unset_query_setting_is_named(use_infinity, settings):
    settings.NEXTHINK_NQL_DEVICES_QUERY = ""

    code, out, _ = run_command("check_nexthink")

    assert code == 1
    assert "NEXTHINK_NQL_DEVICES_QUERY is not set" in out


def test_json_gives_every_check(use_infinity, settings):
    settings.NEXTHINK_CLIENT_ID, settings.NEXTHINK_CLIENT_SECRET = "no-nql", "no-nql-demo"

    code, out, _ = run_command("check_nexthink", "--json")

    document = json.loads(out)
    assert code == 1 and document["ok"] is False
    assert [(c["check"], c["ok"]) for c in document["checks"]] == [
        ("Token", True),
        ("Remote actions", True),
        ("Workflows", True),
        ("Saved query #portal_devices_of_user", False),
        ("Saved query #portal_remote_action_executions", False),
        ("Saved query #portal_workflow_executions", False),
    ]


def test_on_classic_it_says_it_checks_infinity_only(settings):
    settings.NEXTHINK_PLATFORM = "classic"

    code, out, _ = run_command("check_nexthink")

    assert code == 1 and "NEXTHINK_PLATFORM=infinity" in out


def test_readme_explains_the_set_up_and_its_example_lines_are_the_commands_own(use_infinity, settings):
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("### Setting up a tenant for the portal", 1)[1].split("\n### ", 1)[0]
    for words in ("Remote Actions API", "NQL API", "Manage all NQL API queries", "check_nexthink", "tick **API**"):
        assert words in " ".join(section.split())
    examples = [line[2:] for line in section.split("```sh", 1)[1].split("```", 1)[0].splitlines() if line[:2] == "# "]

    outputs = [run_command("check_nexthink")[1]]
    settings.NEXTHINK_CLIENT_ID, settings.NEXTHINK_CLIENT_SECRET = "no-nql", "no-nql-demo"
    outputs.append(run_command("check_nexthink")[1])
    settings.NEXTHINK_CLIENT_ID, settings.NEXTHINK_CLIENT_SECRET = "portal", "portal-demo"
    use_infinity.set_saved_query("executions", query_id="#not_saved_yet")
    outputs.append(run_command("check_nexthink")[1].replace("#not_saved_yet", "#portal_remote_action_executions"))

    assert len(examples) == 5
    assert all(any(line in output.splitlines() for output in outputs) for line in examples)
