"""The integration API (/api/v1/): tokens and scopes, the employee's rules, and a stable type per refusal."""

import itertools
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from actions.apiclients import SCOPES, client_create, client_revoke
from actions.models import ActionParameter, ApiCall, Run, Ticket
from actions.runs import submit as submit_module
from tests.factories import ALICE_LAPTOP, AMER, make_action, make_device, make_laptop, make_parameter, submit

ALL = sorted(SCOPES)
PROBLEM = "application/problem+json"


@pytest.fixture
def make_token(db):
    """A new client with these scopes (all but devices:any by default); returns its secret."""
    numbers = itertools.count(1)

    def make(scopes=tuple(s for s in ALL if s != "devices:any"), **fields):
        _, secret = client_create(name=f"client-{next(numbers)}", scopes=list(scopes), **fields)
        return secret

    return make


@pytest.fixture
def token(make_token):
    return make_token()


@pytest.fixture
def call(client):
    def do(method, path, token="", body=None, **headers):
        extra = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
        if token:
            extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        if body is not None:
            return getattr(client, method)(path, body, content_type="application/json", **extra)
        return getattr(client, method)(path, **extra)

    return do


def problem_type(response) -> str:
    assert response["Content-Type"] == PROBLEM, response.content
    return response.json()["type"].rsplit("/", 1)[-1]


def run_body(action, **values):
    return {"employee": "alice", "action": action.slug, "device": ALICE_LAPTOP, "params": {"Mode": "full"}} | values


# --- The document and the reference page -------------------------------------------------------------


def test_it_serves_an_openapi_3_document_and_a_reference_page_without_signing_in(call):
    document = call("get", "/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/runs" in document["paths"]
    refusal = document["paths"]["/api/v1/runs"]["post"]["responses"]["409"]["content"]
    assert list(refusal) == [PROBLEM]
    page = call("get", "/api/v1/docs")
    assert page.status_code == 200 and b"swagger-ui" in page.content
    # Served by the portal itself, so the page works under its Content-Security-Policy (self only).
    scripts = re.findall(rb'<script[^>]* src="([^"]+)"', page.content)
    assert scripts and all(src.startswith(b"/static/") for src in scripts)


# --- Tokens ------------------------------------------------------------------------------------------


def test_it_refuses_a_call_without_a_valid_token(call, alice, token):
    assert problem_type(call("get", "/api/v1/devices?employee=alice")) == "unauthorized"
    response = call("get", "/api/v1/devices?employee=alice", token="fmd_not-a-token")
    assert response.status_code == 401 and problem_type(response) == "unauthorized"
    assert call("get", "/api/v1/devices?employee=alice", token=token).status_code == 200


def test_a_revoked_or_expired_client_is_refused_at_once(call, alice, db):
    revoked, revoked_secret = client_create(name="revoked", scopes=["catalog:read"])
    _, expired_secret = client_create(
        name="expired", scopes=["catalog:read"], expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert call("get", "/api/v1/devices?employee=alice", token=revoked_secret).status_code == 200
    client_revoke(revoked)
    for secret in (revoked_secret, expired_secret):
        assert problem_type(call("get", "/api/v1/devices?employee=alice", token=secret)) == "unauthorized"


def test_the_secret_is_stored_only_as_a_digest(db):
    client, secret = client_create(name="desk", scopes=["runs:read"])
    client.refresh_from_db()
    assert secret.startswith("fmd_") and len(secret) > 40
    assert secret not in (client.secret_hash, client.secret_hint) and client.secret_hint == secret[:12]


# --- Scopes ------------------------------------------------------------------------------------------

ENDPOINTS = [  # (scope, method, path, body)
    ("catalog:read", "get", "/api/v1/actions?employee=alice", None),
    ("catalog:read", "get", "/api/v1/devices?employee=alice", None),
    ("runs:submit", "post", "/api/v1/runs", "RUN"),
    ("runs:read", "get", "/api/v1/runs?employee=alice", None),
    ("runs:read", "get", "/api/v1/runs/{run}?employee=alice", None),
    ("feedback:write", "post", "/api/v1/runs/{run}/feedback", {"employee": "alice", "fixed": True}),
    ("tickets:create", "post", "/api/v1/runs/{run}/help", {"employee": "alice"}),
]


@pytest.mark.parametrize(("scope", "method", "path", "body"), ENDPOINTS)
def test_each_endpoint_needs_its_scope(call, make_token, alice, laptop, action, settings, scope, method, path, body):
    settings.TICKETING = "email"
    run = submit(alice, action, laptop)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.DONE, finished_at=timezone.now(), fixed=False)
    path = path.format(run=run.pk)
    body = run_body(action) if body == "RUN" else body
    without = make_token([s for s in ALL if s != scope])
    refused = call(method, path, token=without, body=body)
    assert refused.status_code == 403 and problem_type(refused) == "scope-missing"
    allowed = call(method, path, token=make_token([scope]), body=body)
    assert allowed.status_code in (200, 201, 202), allowed.content


# --- On behalf of an employee, under the employee's rules -----------------------------------------------


def test_it_lists_the_actions_the_employee_sees_with_their_parameters(call, token, alice, finance, action):
    hidden = make_action(name="Finance only")
    hidden.groups.add(finance)
    make_parameter(
        action, name="Scope", label="Scope", kind=ActionParameter.Kind.CHOICE, choices="all|Everything\nmine"
    )
    listed = call("get", "/api/v1/actions?employee=alice", token=token).json()
    assert [a["slug"] for a in listed["actions"]] == [action.slug]
    scope = next(p for p in listed["actions"][0]["parameters"] if p["name"] == "Scope")
    assert scope["choices"] == [{"value": "all", "label": "Everything"}, {"value": "mine", "label": "mine"}]
    alice.groups.add(finance)
    assert {
        a["slug"] for a in call("get", "/api/v1/actions?employee=alice@corp.example", token=token).json()["actions"]
    } == {
        action.slug,
        hidden.slug,
    }
    response = call("get", f"/api/v1/actions/{hidden.slug}?employee=bob-nobody", token=token)
    assert response.status_code == 404 and problem_type(response) == "unknown-employee"


def test_a_client_limited_to_some_actions_reaches_no_other(call, make_token, alice, laptop, action):
    other = make_action(name="Other")
    limited = make_token()
    from actions.models import ApiClient

    ApiClient.objects.get(secret_hint=limited[:12]).actions.add(other)
    assert [a["slug"] for a in call("get", "/api/v1/actions?employee=alice", token=limited).json()["actions"]] == [
        other.slug
    ]
    response = call("post", "/api/v1/runs", token=limited, body=run_body(action))
    assert response.status_code == 404 and problem_type(response) == "not-visible"
    assert not Run.objects.exists()


def test_a_run_goes_through_the_browser_paths_submit_service(call, token, alice, laptop, action, monkeypatch):
    calls = []
    real = submit_module.run_submit
    monkeypatch.setattr(submit_module, "run_submit", lambda **kw: calls.append(kw) or real(**kw))
    response = call("post", "/api/v1/runs", token=token, body=run_body(action))
    assert response.status_code == 201, response.content
    run = Run.objects.get()
    assert response.json()["id"] == str(run.pk) and response.json()["status"] == "queued"
    assert (run.user, run.device, run.params, run.requested_by) == (alice, laptop, {"Mode": "full"}, None)
    assert len(calls) == 1
    read = call("get", f"/api/v1/runs/{run.pk}?employee=alice", token=token).json()
    assert read["status"] == "queued" and read["summary"] and read["ticket"]["state"] is None
    assert read["status_label"] == "Waiting to be sent"  # the words the run page shows, not the model's name


def test_the_only_device_is_used_when_none_is_named_and_several_must_be_named(call, token, alice, laptop, action):
    body = run_body(action)
    del body["device"]
    assert call("post", "/api/v1/runs", token=token, body=body).status_code == 201
    make_device(alice, name="DESKTOP-ALICE")
    response = call("post", "/api/v1/runs", token=token, body=body)
    assert problem_type(response) == "invalid-parameter" and response.json()["field"] == "device"


@pytest.mark.parametrize("shape", ["as stored", "upper case", "padded"])
def test_no_other_persons_device_by_any_field_without_devices_any(call, make_token, alice, bob, laptop, action, shape):
    bobs = make_device(bob, name="LAPTOP-BOB")
    uid = {"as stored": bobs.uid, "upper case": bobs.uid.upper(), "padded": f" {bobs.uid} "}[shape]
    token = make_token()
    response = call("post", "/api/v1/runs", token=token, body=run_body(action, device=uid))
    assert response.status_code in (404, 422) and problem_type(response) in ("not-your-device", "invalid-parameter")
    # Bob's run is not Alice's to read, answer or ask help about, whatever the client's scopes.
    bobs_run = submit(bob, action, bobs)
    Run.objects.filter(pk=bobs_run.pk).update(status=Run.Status.DONE, finished_at=timezone.now())
    every = make_token(ALL)
    for method, path, body in [
        ("get", f"/api/v1/runs/{bobs_run.pk}?employee=alice", None),
        ("post", f"/api/v1/runs/{bobs_run.pk}/feedback", {"employee": "alice", "fixed": False}),
        ("post", f"/api/v1/runs/{bobs_run.pk}/help", {"employee": "alice"}),
    ]:
        assert problem_type(call(method, path, token=every, body=body)) == "run-not-found"
    assert all(
        r["id"] != str(bobs_run.pk) for r in call("get", "/api/v1/runs?employee=alice", token=every).json()["runs"]
    )
    assert Run.objects.filter(device=bobs).count() == 1 and Run.objects.get(pk=bobs_run.pk).fixed is None


def test_devices_any_lets_only_it_staff_with_the_permission_run_on_anothers_device(
    call, make_token, alice, bob, action
):
    bobs = make_device(bob, name="LAPTOP-BOB")
    token = make_token(ALL)
    refused = call("post", "/api/v1/runs", token=token, body=run_body(action, device=bobs.uid))
    assert problem_type(refused) == "not-your-device"
    alice.is_staff = True
    alice.save()
    alice.user_permissions.add(Permission.objects.get(codename="run_action_on_any_device"))
    alice = User.objects.get(pk=alice.pk)
    response = call("post", "/api/v1/runs", token=token, body=run_body(action, device=bobs.uid))
    assert response.status_code == 201, response.content
    run = Run.objects.get()
    assert (run.user, run.device, run.requested_by) == (bob, bobs, alice)


def test_a_devices_any_client_reads_the_runs_it_asked_for_for_others_and_no_other_client_does(
    call, make_token, alice, bob, action
):
    bobs = make_device(bob, name="LAPTOP-BOB")
    alice.is_staff = True
    alice.save()
    alice.user_permissions.add(Permission.objects.get(codename="run_action_on_any_device"))
    asking, other_any, plain = make_token(ALL), make_token(ALL), make_token()
    run_id = call("post", "/api/v1/runs", token=asking, body=run_body(action, device=bobs.uid)).json()["id"]
    admins_run = submit(bob, action, bobs, requested_by=alice, idempotency_key="b" * 20)  # not through a client

    def read(token, employee, pk=run_id):
        response = call("get", f"/api/v1/runs/{pk}?employee={employee}", token=token)
        return response.status_code if response.status_code == 200 else problem_type(response)

    assert read(asking, "alice") == 200 and read(asking, "bob") == 200  # the asker's, and bob's own
    assert read(other_any, "alice") == read(plain, "alice") == read(asking, "alice", admins_run.pk) == "run-not-found"
    feedback = call("post", f"/api/v1/runs/{run_id}/feedback", token=asking, body={"employee": "alice", "fixed": True})
    assert problem_type(feedback) == "run-not-found"  # answering is the device owner's


def test_the_call_log_is_pruned_after_its_retention(token, alice, call, settings):
    from actions.tasks import prune_api_calls

    settings.API_CALL_LOG_DAYS = 30
    call("get", "/api/v1/devices?employee=alice", token=token)
    call("get", "/api/v1/devices?employee=alice", token=token)
    old, recent = ApiCall.objects.order_by("pk")
    ApiCall.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=31))
    ApiCall.objects.filter(pk=recent.pk).update(at=timezone.now() - timedelta(days=29))

    assert prune_api_calls() == 1
    assert list(ApiCall.objects.values_list("pk", flat=True)) == [recent.pk]


# --- Refusals, each with its type ------------------------------------------------------------------------


def test_cooldown_says_until_when(call, token, alice, laptop, action):
    action.cooldown_minutes = 10
    action.save()
    assert call("post", "/api/v1/runs", token=token, body=run_body(action)).status_code == 201
    response = call("post", "/api/v1/runs", token=token, body=run_body(action))
    assert response.status_code == 409 and problem_type(response) == "cooldown"
    assert response.json()["retry_at"] and 500 < int(response["Retry-After"]) <= 600


def test_the_daily_limit_is_a_limit(call, token, alice, laptop, action):
    action.daily_limit_per_user = 1
    action.save()
    assert call("post", "/api/v1/runs", token=token, body=run_body(action)).status_code == 201
    response = call("post", "/api/v1/runs", token=token, body=run_body(action))
    assert response.status_code == 409 and problem_type(response) == "limit"


def test_an_action_that_needs_approval_asks_for_a_reason_then_waits(call, token, alice, laptop, action):
    from django.contrib.auth.models import Group

    action.approver_group = Group.objects.create(name="Security approvers")
    action.save()
    listed = call("get", "/api/v1/actions?employee=alice", token=token).json()["actions"]
    assert [a["needs_approval"] for a in listed if a["slug"] == action.slug] == [True]

    response = call("post", "/api/v1/runs", token=token, body=run_body(action))
    assert response.status_code == 403 and problem_type(response) == "approval-needed"
    assert response.json()["field"] == "reason" and not Run.objects.exists()

    response = call("post", "/api/v1/runs", token=token, body=run_body(action, reason="Teams will not start"))
    assert response.status_code == 201 and response.json()["status"] == "waiting_approval"
    assert Run.objects.get().reason == "Teams will not start"


def test_the_action_list_names_the_systems_an_action_and_each_input_run_on(call, token, alice, action):
    action.runs_on_macos = False
    action.save()

    (listed,) = [a for a in call("get", "/api/v1/actions?employee=alice", token=token).json()["actions"]]
    assert listed["platforms"] == ["windows"]
    assert all(p["platforms"] == ["macos", "windows"] for p in listed["parameters"])


def test_an_engine_the_action_is_not_enabled_for_is_not_available(call, token, alice, emea_action):
    from actions.models import Engine

    make_laptop(alice, engine=Engine.objects.create(database_uid=AMER, name="engine-amer"))
    response = call("post", "/api/v1/runs", token=token, body=run_body(emea_action))
    assert problem_type(response) == "not-available"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"params": {"Mode": "x" * 5000}}, "params.Mode"),
        ({"params": {"Nope": "1"}}, "params.Nope"),
        ({"params": {"Scope": "neither"}}, "params.Scope"),
        ({"device": "not-a-uid"}, "device"),
        ({"employee": ""}, "employee"),
        ({"confirmed": False, "CONFIRM": True}, "confirmed"),
    ],
)
def test_invalid_input_names_the_field(call, token, alice, laptop, action, values, field):
    make_parameter(
        action, name="Scope", label="Scope", kind=ActionParameter.Kind.CHOICE, choices="all\nmine", default="all"
    )
    if values.pop("CONFIRM", False):
        action.confirmation_text = "This closes Teams."
        action.save()
    response = call("post", "/api/v1/runs", token=token, body=run_body(action, **values))
    assert problem_type(response) == "invalid-parameter" and response.status_code == 422
    assert response.json()["field"] == field
    assert not Run.objects.exists()


def test_idempotency_key_returns_the_same_run_and_other_values_are_a_conflict(call, token, alice, laptop, action):
    key = "chat-7f3a9c1e2b4d5f60"
    first = call("post", "/api/v1/runs", token=token, body=run_body(action), **{"Idempotency-Key": key})
    again = call("post", "/api/v1/runs", token=token, body=run_body(action), **{"Idempotency-Key": key})
    assert first.json()["id"] == again.json()["id"] and Run.objects.count() == 1
    other = call(
        "post", "/api/v1/runs", token=token, body=run_body(action, params={"Mode": "quick"}), **{"Idempotency-Key": key}
    )
    assert other.status_code == 409 and problem_type(other) == "idempotency-conflict"
    bad = call("post", "/api/v1/runs", token=token, body=run_body(action), **{"Idempotency-Key": "short"})
    assert problem_type(bad) == "invalid-parameter" and bad.json()["field"] == "Idempotency-Key"


def test_a_client_s_last_use_is_written_once_a_minute_not_at_every_call(call, token, alice):
    from actions.models import ApiClient

    assert call("get", "/api/v1/actions?employee=alice", token=token).status_code == 200
    first = ApiClient.objects.get().last_used_at
    assert first is not None
    assert call("get", "/api/v1/actions?employee=alice", token=token).status_code == 200
    assert ApiClient.objects.get().last_used_at == first
    ApiClient.objects.update(last_used_at=first - timedelta(minutes=2))
    assert call("get", "/api/v1/actions?employee=alice", token=token).status_code == 200
    assert ApiClient.objects.get().last_used_at > first


def test_a_client_over_its_rate_limit_is_told_when_to_come_back(call, token, alice, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    for _ in range(2):
        assert call("get", "/api/v1/devices?employee=alice", token=token).status_code == 200
    response = call("get", "/api/v1/devices?employee=alice", token=token)
    assert response.status_code == 429 and problem_type(response) == "rate-limited"
    assert 1 <= int(response["Retry-After"]) <= 60


def test_a_body_too_large_is_refused(call, token, alice, action):
    response = call("post", "/api/v1/runs", token=token, body=run_body(action, params={"Mode": "x" * 20_000}))
    assert response.status_code == 413 and problem_type(response) == "body-too-large"


# --- Feedback and help -------------------------------------------------------------------------------------


def test_listing_runs_reads_their_engine_results_in_one_query_whatever_their_number(call, token, alice, laptop, action):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as seen:
            assert call("get", "/api/v1/runs?employee=alice", token=token).status_code == 200
        return len(seen)

    submit(alice, action, laptop)
    Run.objects.update(status=Run.Status.SENT)  # ended: its Engine answers are read
    one = queries()
    for _ in range(3):
        submit(alice, action, laptop)
    Run.objects.update(status=Run.Status.SENT)

    assert queries() == one


def test_feedback_is_stored_once_the_run_is_final(call, token, alice, laptop, action):
    run = submit(alice, action, laptop)
    closed = call("post", f"/api/v1/runs/{run.pk}/feedback", token=token, body={"employee": "alice", "fixed": True})
    assert closed.status_code == 409 and problem_type(closed) == "feedback-closed"
    Run.objects.filter(pk=run.pk).update(status=Run.Status.DONE, finished_at=timezone.now())
    answered = call(
        "post",
        f"/api/v1/runs/{run.pk}/feedback",
        token=token,
        body={"employee": "alice", "fixed": False, "comment": "Still slow"},
    )
    assert answered.status_code == 200 and answered.json()["fixed"] is False
    run.refresh_from_db()
    assert (run.fixed, run.feedback_comment) == (False, "Still slow")
    bad = call(
        "post",
        f"/api/v1/runs/{run.pk}/feedback",
        token=token,
        body={"employee": "alice", "fixed": True, "comment": "a\x07b"},
    )
    assert problem_type(bad) == "invalid-parameter" and bad.json()["field"] == "comment"


def test_help_asks_the_service_desk_through_the_ticket_service(call, token, alice, laptop, action, settings):
    run = submit(alice, action, laptop)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.DONE, finished_at=timezone.now())
    settings.TICKETING = ""
    assert (
        problem_type(call("post", f"/api/v1/runs/{run.pk}/help", token=token, body={"employee": "alice"}))
        == "help-not-available"
    )
    settings.TICKETING = "email"
    worked = call("post", f"/api/v1/runs/{run.pk}/help", token=token, body={"employee": "alice"})
    assert problem_type(worked) == "help-not-available"  # it worked, and no one said otherwise
    Run.objects.filter(pk=run.pk).update(fixed=False)
    response = call("post", f"/api/v1/runs/{run.pk}/help", token=token, body={"employee": "alice"})
    assert response.status_code == 202 and response.json()["ticket"]["state"] == "requested"
    assert Ticket.objects.get(run=run).requested_by == alice


# --- The call log ---------------------------------------------------------------------------------------------


def test_every_call_of_a_known_client_is_logged_with_its_employee_and_refusal(call, token, alice, laptop, action):
    call("post", "/api/v1/runs", token=token, body=run_body(action))
    call("get", "/api/v1/actions/nope?employee=alice", token=token)
    logged = list(
        ApiCall.objects.order_by("at", "pk").values_list("method", "status", "employee", "problem", "client_name")
    )
    assert [row[:4] for row in logged] == [("POST", 201, "alice", ""), ("GET", 404, "alice", "not-visible")]
    assert ApiCall.objects.filter(run_id=Run.objects.get().pk).count() == 1


# --- Admin ---------------------------------------------------------------------------------------------------


def test_the_admin_shows_a_new_clients_secret_once_and_stores_its_digest(client, admin_user, call, alice):
    client.force_login(admin_user)
    response = client.post(
        "/admin/actions/apiclient/add/",
        {"name": "Teams bot", "scopes": ["catalog:read", "runs:read"], "owner": admin_user.pk},
    )
    assert response.status_code == 200, response.content
    secret = response.context["secret"]
    assert secret.encode() in response.content
    from actions.models import ApiClient

    made = ApiClient.objects.get(name="Teams bot")
    assert made.scopes == ["catalog:read", "runs:read"] and secret not in made.secret_hash
    assert secret.encode() not in client.get(f"/admin/actions/apiclient/{made.pk}/change/").content
    client.logout()
    assert call("get", "/api/v1/devices?employee=alice", token=secret).status_code == 200


def test_a_name_with_nul_names_nobody_and_is_logged_as_sent(call, token, alice):
    response = call("get", "/api/v1/devices?employee=ali%00ce", token=token)
    assert problem_type(response) == "unknown-employee"
    assert ApiCall.objects.get().employee == "ali\ufffdce"


def test_the_availability_of_many_actions_reads_the_employee_s_fair_use_once(
    call, token, alice, laptop, action, monkeypatch
):
    counted = []
    real = submit_module.fair_use
    monkeypatch.setattr(submit_module, "fair_use", lambda **kw: counted.append(kw) or real(**kw))
    for n in range(3):
        make_action(name=f"Free {n}")

    listed = call("get", f"/api/v1/actions?employee=alice&device={laptop.uid}", token=token).json()["actions"]

    assert len(listed) == 4 and all(a["availability"]["allowed"] for a in listed)
    assert len(counted) == 1


def test_with_a_device_each_action_says_whether_it_may_run_there_now(call, token, alice, bob, laptop, action):
    action.cooldown_minutes = 10
    action.save()
    free = make_action(name="Free")
    submit(alice, action, laptop)
    listed = call("get", f"/api/v1/actions?employee=alice&device={laptop.uid}", token=token).json()["actions"]
    by_slug = {a["slug"]: a["availability"] for a in listed}
    assert by_slug[free.slug] == {"allowed": True, "refusal": None, "retry_at": None, "detail": ""}
    assert by_slug[action.slug]["allowed"] is False and by_slug[action.slug]["refusal"] == "cooldown"
    assert by_slug[action.slug]["retry_at"]
    assert all(
        a["availability"] is None for a in call("get", "/api/v1/actions?employee=alice", token=token).json()["actions"]
    )
    bobs = make_device(bob)
    refused = call("get", f"/api/v1/actions?employee=alice&device={bobs.uid}", token=token)
    assert problem_type(refused) == "not-your-device"
