"""/api/v1/: the endpoints. Each parses, checks the client's scope, names the employee, calls the
browser path's own domain functions and renders; every refusal is a problem (actions/api/problems.py)."""

from __future__ import annotations

import functools
import re
import uuid
from typing import Any

from django.conf import settings
from django.http import Http404
from django.utils import timezone
from ninja import Header, NinjaAPI, Query, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer

from actions import apiclients, platforms
from actions.api.problems import CONTENT_TYPE, TYPES, Problem, ProblemOut, problem_response
from actions.api.schemas import (
    ActionList,
    ActionOut,
    DeviceList,
    FeedbackIn,
    HelpIn,
    RunIn,
    RunList,
    RunOut,
)
from actions.apiclients import (
    CATALOG_READ,
    FEEDBACK_WRITE,
    RUNS_READ,
    RUNS_SUBMIT,
    TICKETS_CREATE,
    DeviceNeeded,
    NotYourDevice,
    client_for_token,
    has_scope,
)
from actions.catalog.forms import IDEMPOTENCY_KEY_RE
from actions.catalog.parameters import (
    InvalidParams,
    as_nexthink_string,
    parameter_initial,
    params_with_defaults,
    parse_choices,
)
from actions.catalog.search import search_actions
from actions.devices.ownership import device_for_user
from actions.devices.resolution import resolve_devices_for
from actions.models import RemoteAction, Run
from actions.runs import submit
from actions.runs.feedback import FeedbackClosed, feedback_open, run_feedback
from actions.runs.selectors import engine_results, labelled_outputs, runs_of, runs_page
from actions.runs.states import REACHED_DEVICE, is_final
from actions.runs.wording import device_status_text, engine_explanation, status_label, status_summary, status_title
from actions.security import client_address
from actions.ticketing.service import needs_help, run_link, ticket_of, ticket_request, ticketing_enabled
from actions.uids import DEVICE_UID_RE

BODY_MAX_BYTES = 16 * 1024
ACTIONS_PAGE_SIZE = 100
DESCRIPTION = """Guarded self-service for service desks and chat assistants: every call names the employee
it is for, and the portal applies that employee's rules (visibility, own devices, parameters, cooldown,
limits). Authenticate with `Authorization: Bearer <token>` (an API client made in the admin).
Refusals are `application/problem+json` with a stable `type`: """ + ", ".join(f"`{t}`" for t in TYPES)


class TokenAuth(HttpBearer):
    """The client's secret; then its rate limit (the client is known, so a refusal is logged for it)."""

    def authenticate(self, request, token):
        client = client_for_token(token)
        if client is None:
            return None
        request.api_client = client
        wait = apiclients.retry_after(client)
        if wait is not None:
            raise Problem(
                "rate-limited",
                f"This client may make {settings.API_RATE_LIMIT_PER_MINUTE} calls a minute.",
                retry_after=wait,
            )
        return client


class JsonParser(Parser):
    """JSON bodies, with any lone surrogate (valid JSON, not valid UTF-8: "\\ud800") replaced by U+FFFD,
    as Django already does for URLs: nothing downstream (PostgreSQL above all) ever sees one."""

    def parse_body(self, request):
        return _replace_surrogates(super().parse_body(request))


def _replace_surrogates(value):
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace") if _SURROGATE.search(value) else value
    if isinstance(value, list):
        return [_replace_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


class Api(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        """Refusals are documented as application/problem+json (what they are), not application/json."""
        schema = super().get_openapi_schema(*args, **kwargs)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if str(status).startswith(("4", "5")) and "application/json" in content:
                        response["content"] = {CONTENT_TYPE: content["application/json"]}
        return schema


api = Api(
    title="Fix my device: integration API",
    version="1",
    description=DESCRIPTION,
    auth=TokenAuth(),
    parser=JsonParser(),
    urls_namespace="api-v1",
    docs_url="/docs",
    openapi_url="/openapi.json",
)

COMMON = frozenset({401, 413, 422, 429})
EMPLOYEE_QUERY = Query(
    ...,
    min_length=1,
    max_length=apiclients.EMPLOYEE_MAX_LENGTH,
    description="The employee this call is for: user name, or e-mail address.",
    examples=["alice"],
)


def refusals(*statuses: int) -> dict:
    return {frozenset(COMMON | set(statuses)): ProblemOut}


@api.exception_handler(Problem)
def _problem(request, exc: Problem):
    return problem_response(request, exc)


@api.exception_handler(AuthenticationError)
def _unauthorized(request, exc):
    detail = "Send Authorization: Bearer <token> with a valid, unrevoked, unexpired API client token."
    return problem_response(request, Problem("unauthorized", detail))


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    first = exc.errors[0] if exc.errors else {}
    loc = [str(part) for part in first.get("loc", ())][1:]
    if loc and loc[0] in ("body", "payload", "params"):  # the handler's argument, not a field
        loc = loc[1:]
    field = ".".join(loc) or "body"
    detail = f"{field}: {first.get('msg', 'not valid')}"
    return problem_response(request, Problem("invalid-parameter", detail[:500], field=field))


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):  # e.g. a body that is not JSON
    return problem_response(request, Problem("invalid-parameter", str(exc)[:500], field="body"))


def employee_for(request, name: str, scope: str):
    """The client (with this scope) and the active employee named; else a problem."""
    client = request.auth
    if not has_scope(client, scope):
        raise Problem("scope-missing", f"This client does not have the scope {scope}.")
    request.api_employee = name
    user = apiclients.employee_named(name)
    if user is None:
        raise Problem("unknown-employee", "No active employee has this user name or e-mail address.")
    return client, user


# --- Catalog and devices -------------------------------------------------------------------------


def action_out(action: RemoteAction, availability: dict | None = None) -> dict[str, Any]:
    return {
        "availability": availability,
        "slug": action.slug,
        "name": action.name,
        "summary": action.summary,
        "category": action.category.name if action.category else None,
        "confirmation_text": action.confirmation_text,
        "cooldown_minutes": action.cooldown_minutes,
        "daily_limit_per_user": action.daily_limit_per_user,
        "platforms": sorted(platforms.runs_on(action)),
        "needs_approval": action.approver_group_id is not None,
        "parameters": [
            {
                "name": p.name,
                "label": p.label,
                "kind": p.kind,
                "required": p.required,
                "help_text": p.help_text,
                "default": as_nexthink_string(p, parameter_initial(p)),
                "choices": [{"value": v, "label": label} for v, label in parse_choices(p.choices)],
                "max_length": p.max_length,
                "min_value": p.min_value,
                "max_value": p.max_value,
                "platforms": sorted(platforms.used_by(p)),
            }
            for p in action.parameters.all()
        ],
    }


def availability_out(user, action: RemoteAction, device, fair: submit.Limits | None = None) -> dict[str, Any]:
    limits = submit.run_availability(user=user, action=action, device=device, fair=fair)
    refusal = None if limits.allowed else refusal_type(limits.kind)
    return {"allowed": limits.allowed, "refusal": refusal, "retry_at": limits.again_at, "detail": limits.message}


def owned_device(request, user, uid: str):
    """The employee's own device named in a read (the action page's own check); else not-your-device."""
    try:
        return device_for_user(user, uid, source_address=client_address(request))
    except Http404:
        raise Problem("not-your-device", "This device is not the employee's.", field="device") from None


@api.get("/actions", response={200: ActionList, **refusals(403, 404)}, summary="The actions an employee may run")
def list_actions(
    request,
    employee: str = EMPLOYEE_QUERY,
    device: str = Query(
        "",
        pattern=DEVICE_UID_RE.pattern,
        description="One of the employee's devices: each action then says whether it may run there now.",
    ),
    q: str = Query(
        "",
        max_length=100,
        description="Only actions matching every word (name, descriptions, keywords; small typos forgiven).",
    ),
    page: int = Query(1, ge=1, le=10_000),
):
    client, user = employee_for(request, employee, CATALOG_READ)
    target = owned_device(request, user, device) if device else None
    actions = apiclients.actions_for(client, user)
    if q.strip() and "\x00" not in q:
        actions = search_actions(actions, q)
    actions = actions.select_related("category").prefetch_related("parameters")
    actions = actions.order_by("category__display_order", "category__name", "display_order", "name", "pk")
    total = actions.count()
    start = (page - 1) * ACTIONS_PAGE_SIZE
    # The portal's fair-use limits are the employee's, whatever the action: read once for the page.
    fair = submit.fair_use(user=user, now=timezone.now()) if target else None
    shown = [
        action_out(a, availability_out(user, a, target, fair) if target else None)
        for a in actions.prefetch_related("engines")[start : start + ACTIONS_PAGE_SIZE]
    ]
    return {"actions": shown, "total": total, "page": page}


@api.get(
    "/actions/{slug}", response={200: ActionOut, **refusals(403, 404)}, summary="One action, if the employee may run it"
)
def get_action(request, slug: str, employee: str = EMPLOYEE_QUERY):
    client, user = employee_for(request, employee, CATALOG_READ)
    action = apiclients.action_for(client, user, slug)
    if action is None:
        raise Problem("not-visible", "This employee may not run this action through this client, or it does not exist.")
    return action_out(action)


@api.get("/devices", response={200: DeviceList, **refusals(403, 404)}, summary="The employee's own devices")
def list_devices(request, employee: str = EMPLOYEE_QUERY):
    _, user = employee_for(request, employee, CATALOG_READ)
    resolution = resolve_devices_for(user)
    return {
        "devices": [
            {"uid": d.uid, "name": d.name, "platform": d.platform, "last_seen_at": d.last_seen_at}
            for d in resolution.devices
        ],
        "unreachable_servers": resolution.unreachable_engines,
    }


# --- Runs ----------------------------------------------------------------------------------------


def run_out(run: Run) -> dict[str, Any]:
    ticket = ticket_of(run)
    return {
        "id": str(run.pk),
        "status": run.status,
        "status_label": status_label(run.status),
        "title": status_title(run),
        "summary": status_summary(run),
        "final": is_final(run.status),
        "reached_device": run.status in REACHED_DEVICE,
        "action": run.action.slug if run.action else None,
        "action_name": run.action_name,
        "device_uid": run.device_uid,
        "device_name": run.device_name,
        "created_at": run.created_at,
        "sending_at": run.sending_at,
        "finished_at": run.finished_at,
        "engine_results": [
            {"server": r.engine_name or r.database_uid, "explanation": engine_explanation(r), "code": r.code}
            for r in engine_results(run)
        ],
        "device_status_text": device_status_text(run),
        "outputs": labelled_outputs(run),
        "fixed": run.fixed,
        "feedback_open": feedback_open(run),
        "ticket": {
            "state": ticket.state if ticket else None,
            "state_label": ticket.get_state_display() if ticket else "",
            "number": ticket.number if ticket else "",
            "can_request": ticketing_enabled() and needs_help(run) and ticket is None,
        },
        "url": run_link(run),
    }


@api.post("/runs", response={201: RunOut, **refusals(403, 404, 409)}, summary="Run an action for an employee")
def create_run(
    request,
    body: RunIn,
    idempotency_key: str = Header(
        "",
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_RE.pattern,
        description="16 to 64 letters, digits, - or _: the same key again returns the same run; "
        "with other values, 409.",
    ),
):
    client, user = employee_for(request, body.employee, RUNS_SUBMIT)
    action = apiclients.action_for(client, user, body.action)
    if action is None:
        raise Problem("not-visible", "This employee may not run this action through this client, or it does not exist.")
    try:
        target = apiclients.run_target(
            client=client, user=user, uid=body.device, source_address=client_address(request)
        )
    except NotYourDevice:
        raise Problem("not-your-device", "This device is not the employee's.", field="device") from None
    except DeviceNeeded as exc:
        raise Problem("invalid-parameter", str(exc), field="device") from None
    if action.confirmation_text and not body.confirmed:
        raise Problem("invalid-parameter", "Show the confirmation text, then send confirmed: true.", field="confirmed")
    try:
        run = submit.run_submit(
            user=target.user,
            action=action,
            device=target.device,
            params=params_with_defaults(action, body.params),
            idempotency_key=idempotency_key,
            requested_by=target.requested_by,
            reason=body.reason,
        )
    except InvalidParams as exc:
        raise Problem("invalid-parameter", str(exc), field=f"params.{exc.field}" if exc.field else "params") from None
    except submit.IdempotencyConflict:
        raise Problem("idempotency-conflict", "This Idempotency-Key was already used with other values.") from None
    except submit.RunRefused as exc:
        raise refusal(exc) from None
    request.api_run_id = run.pk
    return Status(201, run_out(run))


def refusal_type(kind: str) -> str:
    """The problem type of a submit refusal's kind (RunRefused.kind, Limits.kind)."""
    if kind == "cooldown":
        return "cooldown"
    if kind in ("daily_limit", "in_flight", "rate"):
        return "limit"
    if kind == "approval_reason":
        return "approval-needed"
    return "not-available"


def refusal(exc: submit.RunRefused) -> Problem:
    """The submit service's refusal as a problem: its kind, its words, and when it will be allowed."""
    retry = None
    if exc.again_at is not None:
        retry = max(1, int((exc.again_at - timezone.now()).total_seconds() + 0.999))
    field = "reason" if exc.kind == "approval_reason" else ""
    return Problem(refusal_type(exc.kind), str(exc), field=field, retry_at=exc.again_at, retry_after=retry)


def own_run(request, user, run_id: uuid.UUID, *, client=None) -> Run:
    """The employee's own run; with `client` (reads only), also one the employee asked for on another
    person's device through this client with "devices:any" (apiclients.requested_through)."""
    runs = Run.objects.select_related("action", "device", "ticket").prefetch_related("engine_results").filter(pk=run_id)
    run = runs_of(user).filter(pk=run_id).select_related("action", "device", "ticket")
    run = run.prefetch_related("engine_results").first()
    if run is None and client is not None:
        run = runs.filter(requested_by=user).first()
        if run is not None and not apiclients.requested_through(client, user, run):
            run = None
    if run is None:
        raise Problem("run-not-found", "This employee has no run with this id.")
    request.api_run_id = run.pk
    return run


@api.get("/runs", response={200: RunList, **refusals(403, 404)}, summary="The employee's runs, newest first")
def list_runs(
    request,
    employee: str = EMPLOYEE_QUERY,
    status: Run.Status | None = None,
    before: str = Query("", max_length=80, description="A page's `older`: the runs before it."),
):
    _, user = employee_for(request, employee, RUNS_READ)
    runs = runs_of(user).select_related("action", "ticket").prefetch_related("engine_results")  # run_out's
    if status:
        runs = runs.filter(status=status)
    page = runs_page(runs, before=before)
    return {"runs": [run_out(run) for run in page.runs], "older": page.older}


@api.get("/runs/{run_id}", response={200: RunOut, **refusals(403, 404)}, summary="One run: status, outcome, ticket")
def get_run(request, run_id: uuid.UUID, employee: str = EMPLOYEE_QUERY):
    client, user = employee_for(request, employee, RUNS_READ)
    return run_out(own_run(request, user, run_id, client=client))


@api.post("/runs/{run_id}/feedback", response={200: RunOut, **refusals(403, 404, 409)}, summary="Did this fix it?")
def answer_feedback(request, run_id: uuid.UUID, body: FeedbackIn):
    _, user = employee_for(request, body.employee, FEEDBACK_WRITE)
    run = own_run(request, user, run_id)
    try:
        run_feedback(run=run, fixed=body.fixed, comment=body.comment)
    except FeedbackClosed as exc:
        raise Problem("feedback-closed", str(exc)) from None
    run.refresh_from_db()
    return run_out(run)


@api.post(
    "/runs/{run_id}/help", response={202: RunOut, **refusals(403, 404, 409)}, summary="Ask IT for help (a ticket)"
)
def ask_for_help(request, run_id: uuid.UUID, body: HelpIn):
    _, user = employee_for(request, body.employee, TICKETS_CREATE)
    run = own_run(request, user, run_id)
    if not ticketing_enabled():
        raise Problem("help-not-available", "No service desk is connected to the portal.")
    if not needs_help(run):
        raise Problem("help-not-available", "IT can be asked about a run once it is final and did not fix it.")
    run.ticket = ticket_request(run=run, user=user).ticket  # the run's own fields are unchanged
    return Status(202, run_out(run))


# --- Mounting -----------------------------------------------------------------------------------


def served(view):
    """Every /api/v1/ view: open to the API's own authentication (not the portal's sign-in), bodies
    bounded, and each call by a known client logged (client, employee, status, refusal type)."""

    @functools.wraps(view)
    def serve(request, *args, **kwargs):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > BODY_MAX_BYTES:
            response = problem_response(request, Problem("body-too-large", f"At most {BODY_MAX_BYTES} bytes."))
        else:
            response = view(request, *args, **kwargs)
        client = getattr(request, "api_client", None)
        if client is not None:
            apiclients.call_log(
                client=client,
                method=request.method or "",
                path=request.path,
                status=response.status_code,
                employee=getattr(request, "api_employee", ""),
                problem=getattr(request, "api_problem", ""),
                run_id=getattr(request, "api_run_id", None),
            )
        return response

    serve.login_required = False  # type: ignore[attr-defined]
    return serve


def urls():
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        pattern.callback = served(pattern.callback)
    return patterns, app_name, namespace
