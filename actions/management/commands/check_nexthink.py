import json
import sys
from dataclasses import dataclass

from django.conf import settings

from actions.nexthink.errors import ActApiError, ActInputError
from actions.nexthink.infinity.client import InfinityClient, TokenCache, infinity_client_from_settings

from .act_run import JsonCommand

README_QUERIES = 'the text in README, "The NQL queries an administrator saves in Nexthink"'
CREDENTIALS = "(Administration > API credentials)"
# Harmless parameters: a user and a request that do not exist, so that the queries answer no row.
CHECK_USER = "check_nexthink\\no-such-user"
CHECK_REQUEST = "00000000-0000-0000-0000-000000000000"


@dataclass
class Check:
    check: str
    ok: bool
    message: str


class Command(JsonCommand):
    help = (
        "Infinity only: is the tenant set up for the portal? Tries the token, the remote action list and "
        "each saved NQL query (with parameters that match nothing; no action is run), and prints one line "
        "per check: OK, or what is missing and how to fix it. Exit 0 when every check passes, 1 otherwise."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print exactly one JSON document on stdout")

    def handle(self, *args, **options):
        if settings.NEXTHINK_PLATFORM != "infinity":
            checks = [
                Check(
                    "Platform",
                    False,
                    "check_nexthink checks Nexthink Infinity only (NEXTHINK_PLATFORM=infinity); on classic, "
                    "try an action with manage.py act_run.",
                )
            ]
        else:
            # A token cache of its own: the token request is really sent, not answered from the process's cache.
            checks = run_checks(infinity_client_from_settings(tokens=TokenCache(failure_seconds=0)))
        ok = all(c.ok for c in checks)
        if options["json"]:
            self.stdout.write(json.dumps({"ok": ok, "checks": [c.__dict__ for c in checks]}))
        else:
            for c in checks:
                self.stdout.write(f"{c.check}: {c.message}")
        if not ok:
            sys.exit(1)


def run_checks(client: InfinityClient) -> list[Check]:
    queries = [
        ("NEXTHINK_NQL_DEVICES_QUERY", client.devices_query, {"user_name": CHECK_USER}),
        ("NEXTHINK_NQL_EXECUTIONS_QUERY", client.executions_query, {"request_id": CHECK_REQUEST}),
    ]
    if client.workflow_executions_query:  # optional: without it the portal offers no workflow
        queries.append(
            ("NEXTHINK_NQL_WORKFLOW_EXECUTIONS_QUERY", client.workflow_executions_query, {"request_id": CHECK_REQUEST})
        )
    query_names = [f"Saved query {query_id}" if query_id else setting for setting, query_id, _ in queries]
    try:
        client._token()
    except ActApiError as exc:
        skipped = [Check(name, False, "not checked: no token") for name in ["Remote actions", *query_names]]
        return [Check("Token", False, token_problem(exc)), *skipped]
    checks = [Check("Token", True, f"OK (client {client.client_id})"), remote_actions_check(client)]
    if client.workflow_executions_query:
        checks.append(workflows_check(client))
    for name, (setting, query_id, parameters) in zip(query_names, queries, strict=True):
        if not query_id:
            checks.append(Check(name, False, f"{setting} is not set: set it to the id of the saved query in README."))
            continue
        try:
            rows = client.nql(query_id, parameters)
        except ActApiError as exc:
            checks.append(Check(name, False, query_problem(query_id, exc)))
        else:
            checks.append(Check(name, True, f"OK ({len(rows)} rows for a user and a request that do not exist)"))
    return checks


def remote_actions_check(client: InfinityClient) -> Check:
    try:
        actions = client.remote_actions()
    except ActApiError as exc:
        if exc.http_status == 403:
            message = (
                "The API credential may not use remote actions: give it the Remote Actions API permission "
                f"{CREDENTIALS}."
            )
        else:
            message = f"Nexthink did not list the remote actions: {exc.message}"
        return Check("Remote actions", False, message)
    enabled = sum(a.api_enabled for a in actions)
    if not enabled:
        return Check(
            "Remote actions",
            False,
            f"None of the {len(actions)} remote actions can be triggered through the API: enable the API "
            "trigger of those the portal offers (Remote actions > the action > Triggering).",
        )
    return Check("Remote actions", True, f"OK ({enabled} of {len(actions)} can be triggered through the API)")


def workflows_check(client: InfinityClient) -> Check:
    try:
        workflows = client.workflows()
    except ActApiError as exc:
        if exc.http_status == 403:
            message = f"The API credential may not use workflows: give it the Workflows API permission {CREDENTIALS}."
        else:
            message = f"Nexthink did not list the workflows: {exc.message}"
        return Check("Workflows", False, message)
    active = sum(w.active for w in workflows)
    return Check(
        "Workflows",
        True,
        f"OK ({active} of {len(workflows)} workflows listed for the API are active; a workflow appears here once "
        "its API trigger is selected: Workflows > the workflow > General > API)",
    )


def token_problem(exc: ActApiError) -> str:
    if exc.reason == "UNAUTHORIZED":
        return (
            "Nexthink refused the credential: the client ID or secret is wrong (NEXTHINK_CLIENT_ID, "
            "NEXTHINK_CLIENT_SECRET; see Administration > API credentials)."
        )
    if exc.http_status == 404 or exc.reason == "NOT_FOUND":
        return (
            "No token endpoint at NEXTHINK_TOKEN_URL: it should be "
            "https://<instance>-login.<region>.nexthink.cloud/oauth2/default/v1/token."
        )
    return f"No token from NEXTHINK_TOKEN_URL: {exc.message}"


def query_problem(query_id: str, exc: ActApiError) -> str:
    if isinstance(exc, ActInputError):
        return f"{exc.message} Fix the setting."
    if exc.http_status == 403:
        return f"The API credential may not run NQL queries: give it the NQL API permission {CREDENTIALS}."
    if exc.http_status == 404:
        return (
            f"Saved query {query_id} does not exist: create it (Administration > NQL API queries) with "
            f"{README_QUERIES}."
        )
    if exc.http_status == 400:
        return f"Nexthink refused saved query {query_id}: {exc.message} Save it with {README_QUERIES}."
    return f"Saved query {query_id} could not be run: {exc.message}"
