"""The integration API against its own OpenAPI document: schemathesis (on Hypothesis) sends generated
requests, valid and not, to the live server with the demo's real client token, and checks every answer
with all its checks: no 5xx, the status documented, the body, headers and content type as the document
says (problem+json for refusals), invalid data refused, valid data not. Examples are limited so that
the file stays well under a minute."""

import os
from collections import Counter
from io import StringIO

import schemathesis
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode

from actions.models import Device, RemoteAction, Run
from actions.runs.submit import run_submit
from simulators.management.commands.load_demo import DEMO_API_TOKEN

AUTH = {"Authorization": f"Bearer {DEMO_API_TOKEN}"}
# A run's parameters depend on the action it names (names, types, choices, lengths: the action's own
# definition), which no static schema can say: there a schema-valid body may still be a 422
# (invalid-parameter, with the field). Everywhere else schema-valid input is never a 422.
CONFIG = schemathesis.Config.from_dict(
    {
        # A body larger than the API takes is refused whole, before it is read: 413 is a rejection too.
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [
                    "400",
                    "401",
                    "403",
                    "404",
                    "405",
                    "406",
                    "409",
                    "413",
                    "415",
                    "422",
                    "428",
                    "429",
                ]
            }
        },
        "operations": [
            {
                "include-method": "POST",
                "include-path": "/api/v1/runs",
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]}
                },
            }
        ],
    }
)
EXAMPLES = 10  # per operation and pass
# The same examples on every run (CI never flakes on a new one); API_FUZZ_RANDOM=1 explores new ones.
DERANDOMIZE = not os.environ.get("API_FUZZ_RANDOM")


def test_every_operation_answers_as_its_document_says(live_server, transactional_db, settings):
    # The demo: alice with one device, bob with two, its catalog, and the chat assistant's client.
    settings.DEBUG = True
    call_command("load_demo", stdout=StringIO())
    settings.DEBUG = False
    settings.API_RATE_LIMIT_PER_MINUTE = 100_000  # the limit has its own test (test_api.py)
    settings.TICKETING = "email"
    alice = User.objects.get(username="alice")
    action = RemoteAction.objects.get(slug="flush-dns-cache")
    run = run_submit(user=alice, action=action, device=Device.objects.get(owner=alice), params={})
    Run.objects.filter(pk=run.pk).update(status=Run.Status.DONE, finished_at=timezone.now(), fixed=False)
    # Beside what Hypothesis makes up, a pass with a real employee, action and run of hers, so that the
    # rules behind them (and their refusals) are reached too.
    real = {
        "GET /api/v1/actions": {"query": {"employee": "alice"}},
        "GET /api/v1/actions/{slug}": {"query": {"employee": "alice"}, "path_parameters": {"slug": action.slug}},
        "GET /api/v1/devices": {"query": {"employee": "alice"}},
        "GET /api/v1/runs": {"query": {"employee": "alice"}},
        "POST /api/v1/runs": {"body": {"employee": "alice", "action": action.slug}},
        "GET /api/v1/runs/{run_id}": {"query": {"employee": "alice"}, "path_parameters": {"run_id": str(run.pk)}},
        "POST /api/v1/runs/{run_id}/feedback": {
            "body": {"employee": "alice", "fixed": False},
            "path_parameters": {"run_id": str(run.pk)},
        },
        "POST /api/v1/runs/{run_id}/help": {"body": {"employee": "alice"}, "path_parameters": {"run_id": str(run.pk)}},
    }
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/openapi.json", config=CONFIG)
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert sorted(operation.label for operation in operations) == sorted(real)
    for operation in operations:
        passes = [
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
            operation.as_strategy(GenerationMode.POSITIVE, **real[operation.label]),
        ]
        for strategy in passes:

            @given(case=strategy)
            @hypothesis_settings(
                max_examples=EXAMPLES,
                derandomize=DERANDOMIZE,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def check(case):
                response = case.call_and_validate(headers=AUTH)
                statuses[response.status_code] += 1

            check()
    assert not [status for status in statuses if status >= 500]
    # The real pass reached the answers of each kind: read, made, asked for, refused.
    assert {200, 201, 202, 404, 422} <= set(statuses), statuses
