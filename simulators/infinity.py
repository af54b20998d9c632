"""The Nexthink Infinity part of the simulator: OAuth2 token, Remote Actions API, NQL API.

Served by the same server as the classic simulator (simulator.py routes these paths here); pure
standard library. Its data comes from the config's "infinity" key, or infinity.json:
API clients, remote actions (the API's own fields, plus a "simulation" block: outcome "success" or
"failure", waiting_seconds, running_seconds, status_details, outputs) and devices (collector_uid,
name, platform, user, last_seen_minutes_ago, and "offline": true for one that never comes online,
so its executions expire).

    POST /oauth2/default/v1/token       Basic auth, form grant_type=client_credentials
    POST /api/v1/act/execute            Bearer; the documented body; {"requestId", "expiresInMinutes"}
    GET  /api/v1/act/remote-action      Bearer; the config's actions without their "simulation" block
    GET  /api/v1/workflows              Bearer; ?dependency=USER|DEVICE|USER_AND_DEVICE|NONE and
                                        ?triggerMethod=API|MANUAL|MANUAL_MULTIPLE|SCHEDULER, both required
                                        (as the API's schema says); the config's "workflows" whose
                                        "dependency" and "triggerMethods" match, without "simulation"
    POST /api/v2/workflows/execute      Bearer; {"workflowId", "devices": [{"collectorUid"}], "users":
                                        [{"upn"}], "params"} -> {"requestUuid", "executionsUuids"}
    POST /api/v2/nql/execute            Bearer; the two saved queries of "saved_queries", each
                                        {"id", "nql"}: devices ($user_name) and executions
                                        ($request_id), and workflow_executions ($request_id,
                                        over workflow.executions). The NQL text is checked when the query runs,
                                        as Nexthink documents parameters: `$name`, unquoted, only
                                        after `| where`; `{{name}}`, `"$name"` or a parameter outside
                                        a where clause is a 400 naming the problem, and so are
                                        parameters sent that the query does not declare (or missing)

An execution is "waiting_for_device" for waiting_seconds, then "in_progress" for running_seconds,
then its outcome ("success" or "failure", with outputs); "expired" once the request expires on a
device that stays offline. A workflow's execution is "in_progress" for its simulation's running_seconds,
then its "status" ("success" or "failure") with its "outcome" and "outcome_details". Controls:

    POST /_sim/faults   {"target": "token"|"execute"|"remote_actions"|"nql"|"*", "fault": one of
                         expired_token (401: the token presented is expired from then on),
                         too_many (429, "retry_after": "3"), internal_error, html_500, html_502,
                         html_503, html_504, close, drop, hang, not_tls, answer ("status", "body"),
                         "times": 1 (0: until reset)}
    POST /_sim/infinity {"advance_seconds": N} moves the simulator's clock on (executions, tokens);
                        {"expire_tokens": true} expires every token issued so far
                        {"saved_query": {"name": "devices"|"executions", "nql": TEXT, "id": "#id"}}
                        replaces a saved query's text and/or id (checked when it runs, not here)
    GET  /_sim/infinity/saved-queries  the saved queries now: {name: {"id", "nql"}}
    GET  /_sim/infinity/requests  every request received, oldest first: path, method, client_id,
                                  auth ("basic"/"bearer"/""), body (never a secret or a token)
    GET  /_sim/infinity/executions  the executions created, with their current status
    POST /_sim/reset    (the shared reset) forgets all of it
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import secrets
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

DEFAULT_CONFIG_PATH = Path(__file__).with_name("infinity.json")
TOKEN_PATH = "/oauth2/default/v1/token"  # noqa: S105 - a URL path
EXECUTE_PATH = "/api/v1/act/execute"
REMOTE_ACTIONS_PATH = "/api/v1/act/remote-action"
NQL_PATH = "/api/v2/nql/execute"
WORKFLOWS_PATH = "/api/v1/workflows"
WORKFLOW_EXECUTE_PATH = "/api/v2/workflows/execute"
PATHS = {
    TOKEN_PATH: "token",
    EXECUTE_PATH: "execute",
    REMOTE_ACTIONS_PATH: "remote_actions",
    NQL_PATH: "nql",
    WORKFLOWS_PATH: "workflows",
    WORKFLOW_EXECUTE_PATH: "workflow_execute",
}
GET_TARGETS = {"remote_actions", "workflows"}
WORKFLOW_DEPENDENCIES = {"USER", "DEVICE", "USER_AND_DEVICE", "NONE"}
WORKFLOW_TRIGGER_METHODS = {"API", "MANUAL", "MANUAL_MULTIPLE", "SCHEDULER"}
UPN_RE = re.compile(r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$")
COLLECTOR_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
CONTROL_PATHS = {
    "/_sim/infinity",
    "/_sim/infinity/requests",
    "/_sim/infinity/executions",
    "/_sim/infinity/saved-queries",
}
TARGETS = {"token", "execute", "remote_actions", "nql", "workflows", "workflow_execute", "*"}
FAULTS = {
    "expired_token",
    "too_many",
    "internal_error",
    "html_500",
    "html_502",
    "html_503",
    "html_504",
    "close",
    "drop",
    "hang",
    "answer",
    "not_tls",
}
NQL_ID_RE = re.compile(r"^#[a-z0-9_]{2,255}$")
ACTION_ID_RE = re.compile(r"^#[A-Za-z0-9_]{1,255}$")


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    return json.loads(Path(path or DEFAULT_CONFIG_PATH).read_text())


# --- Saved NQL queries -------------------------------------------------------------------------------------
# As Nexthink documents them: a parameter is `$name`, unquoted, and only in a `where` clause.
PARAMETER_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
MUSTACHE_RE = re.compile(r"\{\{\s*([A-Za-z0-9_.]*)\s*\}\}")
QUOTED_PARAMETER_RE = re.compile(r"([\"'])\$([A-Za-z_][A-Za-z0-9_]*)\1")


def nql_problem(nql: str) -> str | None:
    """What is wrong with a saved query's parameters, in plain words; None when nothing is."""
    mustache = MUSTACHE_RE.search(nql)
    if mustache:
        name = mustache.group(1) or "name"
        return (
            f"The saved query writes a parameter as {mustache.group(0)}: NQL parameters are written "
            f"${name}, without quotes or braces, in a where clause."
        )
    quoted = QUOTED_PARAMETER_RE.search(nql)
    if quoted:
        return (
            f"The saved query puts the parameter {quoted.group(0)} in quotes: write ${quoted.group(2)} "
            "without quotes, or it is compared as the literal text."
        )
    for stage in nql.split("|"):
        parameter = PARAMETER_RE.search(stage)
        if parameter and not stage.strip().lower().startswith("where "):
            return (
                f"The saved query uses ${parameter.group(1)} outside a where clause: NQL accepts parameters "
                "only after | where."
            )
    return None


def declared_parameters(nql: str) -> set[str]:
    return set(PARAMETER_RE.findall(nql))


def saved_queries(config: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The config's saved queries as {name: {"id", "nql"}}; the old shape {name: "#id"} has no text to check."""
    queries = {}
    for name, value in config.get("saved_queries", {}).items():
        queries[name] = {"id": value, "nql": ""} if isinstance(value, str) else {"id": value["id"], "nql": value["nql"]}
    return queries


def handles(path: str) -> bool:
    return path in PATHS or path in CONTROL_PATHS


class InfinityState:
    def __init__(self, config: dict[str, Any] | None):
        self.config = copy.deepcopy(config) if config else load_config()
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.queries = saved_queries(self.config)  # /_sim/infinity may change them until the next reset
            self.offset = 0.0  # seconds added to the clock by /_sim/infinity advance_seconds
            self.tokens: dict[str, dict[str, Any]] = {}
            self.requests: list[dict[str, Any]] = []
            self.faults: list[dict[str, Any]] = []
            self.executions: list[dict[str, Any]] = []

    def now(self) -> float:
        return time.time() + self.offset

    # --- config ---------------------------------------------------------------------------------
    def client(self, client_id: str, secret: str) -> dict[str, Any] | None:
        for client in self.config.get("clients", []):
            if client["client_id"] == client_id and secrets.compare_digest(client["client_secret"], secret):
                return client
        return None

    def action(self, action_id: str) -> dict[str, Any] | None:
        for action in self.config.get("remote_actions", []):
            if action["id"] == action_id:
                return action
        return None

    def workflow(self, workflow_id: str) -> dict[str, Any] | None:
        for workflow in self.config.get("workflows", []):
            if workflow["id"] == workflow_id:
                return workflow
        return None

    def device(self, collector_uid: str) -> dict[str, Any] | None:
        for device in self.config.get("devices", []):
            if device["collector_uid"].lower() == collector_uid.lower():
                return device
        return None

    # --- tokens -----------------------------------------------------------------------------------
    def issue_token(self, client: dict[str, Any]) -> tuple[str, int]:
        lifetime = int(self.config.get("token_lifetime_seconds", 900))
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = {"client_id": client["client_id"], "expires_at": self.now() + lifetime}
        return token, lifetime

    def token_client(self, token: str) -> dict[str, Any] | None:
        with self.lock:
            entry = self.tokens.get(token)
        if entry is None or entry["expires_at"] <= self.now():
            return None
        for client in self.config.get("clients", []):
            if client["client_id"] == entry["client_id"]:
                return client
        return None

    def expire_token(self, token: str) -> None:
        with self.lock:
            if token in self.tokens:
                self.tokens[token]["expires_at"] = 0

    def expire_all_tokens(self) -> None:
        with self.lock:
            for entry in self.tokens.values():
                entry["expires_at"] = 0

    # --- faults -------------------------------------------------------------------------------------
    def add_fault(self, fault: dict[str, Any]) -> None:
        if fault.get("fault") not in FAULTS:
            raise ValueError(f"fault must be one of {sorted(FAULTS)}")
        if fault.get("target") not in TARGETS:
            raise ValueError(f"target must be one of {sorted(TARGETS)}")
        entry = {"times": 1, "seconds": 0.0} | fault
        with self.lock:
            self.faults.append(entry)

    def take_fault(self, target: str) -> dict[str, Any] | None:
        with self.lock:
            for fault in self.faults:
                if fault["target"] in ("*", target):
                    if fault["times"] == 1:
                        self.faults.remove(fault)
                    elif fault["times"] > 1:
                        fault["times"] -= 1
                    return dict(fault)
        return None

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(entry)

    # --- executions ---------------------------------------------------------------------------------
    def create_request(self, action: dict[str, Any], devices: list[str], expires_minutes: int) -> str:
        request_id = str(uuid.uuid4())
        created = self.now()
        with self.lock:
            for uid in devices:
                self.executions.append(
                    {
                        "request_id": request_id,
                        "action_id": action["id"],
                        "device": uid,
                        "created_at": created,
                        "expires_at": created + expires_minutes * 60,
                    }
                )
        return request_id

    def create_workflow_request(self, workflow: dict[str, Any], devices: list[str], users: list[str]) -> dict[str, Any]:
        request_id, created = str(uuid.uuid4()), self.now()
        executions = []
        with self.lock:
            for uid in devices:
                execution_id = str(uuid.uuid4())
                executions.append(execution_id)
                self.executions.append(
                    {
                        "request_id": request_id,
                        "execution_id": execution_id,
                        "workflow_id": workflow["id"],
                        "device": uid,
                        "users": list(users),
                        "created_at": created,
                    }
                )
        return {"requestUuid": request_id, "executionsUuids": executions}

    def execution_rows(self, request_id: str, device: str | None, *, workflows: bool = False) -> list[dict[str, Any]]:
        with self.lock:
            chosen = [
                dict(e)
                for e in self.executions
                if e["request_id"] == request_id
                and ("workflow_id" in e) == workflows
                and (device is None or e["device"].lower() == device.lower())
            ]
        return [self._workflow_row(e) if workflows else self._row(e) for e in chosen]

    def all_executions(self) -> list[dict[str, Any]]:
        with self.lock:
            chosen = [dict(e) for e in self.executions]
        return [e | (self._workflow_row(e) if "workflow_id" in e else self._row(e)) for e in chosen]

    def _workflow_row(self, execution: dict[str, Any]) -> dict[str, Any]:
        workflow = self.workflow(execution["workflow_id"]) or {}
        simulation = workflow.get("simulation", {})
        device = self.device(execution["device"]) or {}
        elapsed = self.now() - execution["created_at"]
        if elapsed < float(simulation.get("running_seconds", 2)):
            status, details, outcome, outcome_details = "in_progress", "", "", ""
        else:
            status = simulation.get("status", "success")
            details = simulation.get("status_details", "")
            outcome, outcome_details = simulation.get("outcome", ""), simulation.get("outcome_details", "")
        return {
            "device.name": device.get("name", ""),
            "device.collector.uid": execution["device"],
            "workflow.name": workflow.get("name", ""),
            "request_id": execution["request_id"],
            "status": status,
            "status_details": details,
            "outcome": outcome,
            "outcome_details": outcome_details,
            "request_time": _iso(execution["created_at"]),
        }

    def _row(self, execution: dict[str, Any]) -> dict[str, Any]:
        action = self.action(execution["action_id"]) or {}
        simulation = action.get("simulation", {})
        device = self.device(execution["device"]) or {}
        now = self.now()
        waited = float(simulation.get("waiting_seconds", 1))
        running = float(simulation.get("running_seconds", 1))
        elapsed = now - execution["created_at"]
        details, outputs = "", {}
        if device.get("offline") or not device:
            status = "expired" if now >= execution["expires_at"] else "waiting_for_device"
            if status == "expired":
                details = "The device did not come online before the request expired."
        elif elapsed < waited:
            status = "waiting_for_device"
        elif not _has_script(action, device):
            status = "failure"
            details = f"The remote action has no script for {device.get('platform', 'Windows')}."
        elif elapsed < waited + running:
            status = "in_progress"
        else:
            status = simulation.get("outcome", "success")
            details = simulation.get("status_details", "")
            outputs = dict(simulation.get("outputs", {}))
        return {
            "device.name": device.get("name", ""),
            "device.collector.uid": execution["device"],
            "remote_action.name": action.get("name", ""),
            "request_id": execution["request_id"],
            "status": status,
            "status_details": details,
            "outputs": outputs,
            "time": _iso(now if status not in ("waiting_for_device",) else execution["created_at"]),
        }

    def device_rows(self, user_name: str) -> list[dict[str, Any]]:
        rows = []
        for device in self.config.get("devices", []):
            if str(device.get("user", "")).lower() != user_name.lower():
                continue
            minutes = float(device.get("last_seen_minutes_ago", 0))
            rows.append(
                {
                    "device.name": device["name"],
                    "device.collector.uid": device["collector_uid"],
                    "device.operating_system.platform": device.get("platform", "Windows"),
                    "device.last_seen": _iso(self.now() - minutes * 60),
                }
            )
        return rows


def _has_script(action: dict[str, Any], device: dict[str, Any]) -> bool:
    """Does the action's script exist for the device's platform (scriptInfo.hasScriptWindows, hasScriptMacOs)?"""
    script = action.get("scriptInfo", {})
    mac = str(device.get("platform", "Windows")).lower() == "macos"
    return script.get("hasScriptMacOs" if mac else "hasScriptWindows", True) is not False


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


# --- Requests -------------------------------------------------------------------------------------------
def handle(handler: Any, method: str, path: str, body: bytes) -> None:
    """Answer one request for an Infinity path; `handler` is the simulator's request handler."""
    state: InfinityState = handler.server.infinity
    if path in CONTROL_PATHS:
        _control(handler, state, method, path, body)
        return
    target = PATHS[path]
    expected = "GET" if target in GET_TARGETS else "POST"
    if method != expected:
        handler._json(405, {"code": "METHOD_NOT_ALLOWED", "message": f"Use {expected}."})
        return
    entry: dict[str, Any] = {"received_at": time.time(), "path": path, "method": method, "client_id": "", "auth": ""}
    state.record(entry)
    if target == "token":
        _token(handler, state, entry, body)
        return
    token = _bearer(handler)
    client = state.token_client(token) if token else None
    entry["auth"] = "bearer" if token else ""
    if client is None:
        handler._send(401, b"", "application/json")  # Nexthink's 401 has no body
        return
    entry["client_id"] = client["client_id"]
    fault = state.take_fault(target)
    if fault is not None:
        if fault["fault"] == "expired_token":
            state.expire_token(token)
            handler._send(401, b"", "application/json")
            return
        if handler._apply_fault(fault):
            return
    if target == "remote_actions":
        _remote_actions(handler, state, client)
        return
    if target == "workflows":
        _workflows(handler, state, client)
        return
    data = _json_body(handler, body)
    if data is None:
        return
    entry["body"] = data
    if target == "execute":
        _execute(handler, state, client, data)
    elif target == "workflow_execute":
        _workflow_execute(handler, state, client, data)
    else:
        _nql(handler, state, client, data)


def _control(handler: Any, state: InfinityState, method: str, path: str, body: bytes) -> None:
    if method == "GET" and path == "/_sim/infinity/requests":
        with state.lock:
            handler._json(200, list(state.requests))
    elif method == "GET" and path == "/_sim/infinity/executions":
        handler._json(200, state.all_executions())
    elif method == "GET" and path == "/_sim/infinity/saved-queries":
        with state.lock:
            handler._json(200, copy.deepcopy(state.queries))
    elif method == "POST" and path == "/_sim/infinity":
        try:
            change = json.loads(body or b"{}")
            if "advance_seconds" in change:
                with state.lock:
                    state.offset += float(change["advance_seconds"])
            if change.get("expire_tokens"):
                state.expire_all_tokens()
            if "saved_query" in change:
                _replace_query(state, change["saved_query"])
        except (ValueError, TypeError, AttributeError) as exc:
            handler._json(400, {"error": str(exc)})
            return
        handler._json(200, {"ok": True, "offset_seconds": state.offset})
    else:
        handler._not_found()


def _replace_query(state: InfinityState, change: Any) -> None:
    if not isinstance(change, dict) or change.get("name") not in state.queries:
        raise ValueError(f"saved_query.name must be one of {sorted(state.queries)}")
    if "nql" in change and not isinstance(change["nql"], str):
        raise ValueError("saved_query.nql must be a text")
    if "id" in change and not (isinstance(change["id"], str) and NQL_ID_RE.fullmatch(change["id"])):
        raise ValueError("saved_query.id must match ^#[a-z0-9_]{2,255}$")
    with state.lock:
        state.queries[change["name"]] |= {k: change[k] for k in ("nql", "id") if k in change}


def _token(handler: Any, state: InfinityState, entry: dict[str, Any], body: bytes) -> None:
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    entry["body"] = {k: form[k] for k in ("grant_type", "scope") if k in form}  # never the secret
    client_id, secret = _basic(handler)
    entry["auth"] = "basic" if client_id is not None else ""
    entry["client_id"] = client_id or ""
    fault = state.take_fault("token")
    if fault is not None and fault["fault"] != "expired_token" and handler._apply_fault(fault):
        return
    client = state.client(client_id, secret) if client_id is not None else None
    if client is None:
        handler._json(401, {"error": "invalid_client", "error_description": "Client authentication failed."})
        return
    if form.get("grant_type") != "client_credentials":
        handler._json(400, {"error": "unsupported_grant_type", "error_description": "Use client_credentials."})
        return
    token, lifetime = state.issue_token(client)
    handler._json(
        200,
        {"token_type": "Bearer", "expires_in": lifetime, "access_token": token, "scope": "service:integration"},
    )


def _remote_actions(handler: Any, state: InfinityState, client: dict[str, Any]) -> None:
    if not client.get("act", True):
        handler._json(403, {"code": "NO_PERMISSION", "message": "Not authorized to get remote action information."})
        return
    actions = [{k: v for k, v in a.items() if k != "simulation"} for a in state.config.get("remote_actions", [])]
    handler._json(200, actions)


def _workflows(handler: Any, state: InfinityState, client: dict[str, Any]) -> None:
    if not client.get("workflows", True):
        handler._json(403, {"code": "NO_PERMISSION", "details": "Not authorized to list workflows."})
        return
    query = {k: v[0] for k, v in parse_qs(handler.path.partition("?")[2]).items()}
    dependency, trigger = query.get("dependency"), query.get("triggerMethod")
    if dependency not in WORKFLOW_DEPENDENCIES or trigger not in WORKFLOW_TRIGGER_METHODS:
        handler._json(
            400,
            {"code": "INVALID_REQUEST", "details": "dependency and triggerMethod are required query parameters."},
        )
        return
    workflows = [
        {k: v for k, v in w.items() if k not in ("simulation", "dependency")}
        for w in state.config.get("workflows", [])
        if w.get("dependency") == dependency and trigger in w.get("triggerMethods", [])
    ]
    handler._json(200, workflows)


def _workflow_execute(handler: Any, state: InfinityState, client: dict[str, Any], data: Any) -> None:
    if not client.get("workflows", True):
        handler._json(403, {"code": "NO_PERMISSION", "details": "No permission to execute workflow."})
        return
    if not isinstance(data, dict):
        return _bad(handler, "The body must be a JSON object.")
    workflow_id, devices, users = data.get("workflowId"), data.get("devices"), data.get("users")
    if not isinstance(workflow_id, str) or not ACTION_ID_RE.fullmatch(workflow_id.replace("-", "_")):
        return _bad(handler, "workflowId is missing or invalid.")
    if not isinstance(devices, list) or not isinstance(users, list) or len(devices) > 10000 or len(users) > 10000:
        return _bad(handler, "devices and users must be lists of at most 10000 entries.")
    if not devices and not users:
        return _bad(handler, "Give at least one device or user.")
    uids = []
    for device in devices:
        uid = device.get("collectorUid") if isinstance(device, dict) else None
        if not isinstance(uid, str) or not COLLECTOR_RE.fullmatch(uid):
            return _bad(handler, "Each device must give a collectorUid (a UUID).")
        uids.append(uid)
    upns = []
    for user in users:
        upn = user.get("upn") if isinstance(user, dict) else None
        if not isinstance(upn, str) or not UPN_RE.fullmatch(upn):
            return _bad(handler, "Each user must give a upn (email format).")
        upns.append(upn)
    params = data.get("params", {})
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        return _bad(handler, "params must be an object of strings.")
    workflow = state.workflow(workflow_id)
    if workflow is None:
        return _bad(handler, f"Workflow {workflow_id} not found.", "WORKFLOW_NOT_FOUND")
    if "API" not in workflow.get("triggerMethods", []) or workflow.get("status") != "ACTIVE":
        return _bad(handler, f"Workflow {workflow_id} cannot be triggered through the API.", "API_NOT_ENABLED")
    handler._json(200, state.create_workflow_request(workflow, uids, upns))


def _bad(handler: Any, message: str, code: str = "INVALID_REQUEST") -> None:
    handler._json(400, {"code": code, "message": message})


def _execute(handler: Any, state: InfinityState, client: dict[str, Any], data: Any) -> None:
    if not client.get("act", True):
        handler._json(403, {"code": "NO_PERMISSION", "message": "Not authorized to execute the remote action."})
        return
    if not isinstance(data, dict):
        return _bad(handler, "The body must be a JSON object.")
    action_id, devices = data.get("remoteActionId"), data.get("devices")
    if not isinstance(action_id, str) or not ACTION_ID_RE.fullmatch(action_id):
        return _bad(handler, "remoteActionId is missing or invalid.")
    if not isinstance(devices, list) or not 1 <= len(devices) <= 10000 or not all(isinstance(d, str) for d in devices):
        return _bad(handler, "devices must list 1 to 10000 Collector IDs.")
    params = data.get("params", {})
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        return _bad(handler, "params must be an object of strings.")
    expires = data.get("expiresInMinutes", 60)
    if isinstance(expires, bool) or not isinstance(expires, int) or not 60 <= expires <= 10080:
        return _bad(handler, "expiresInMinutes must be from 60 to 10080.")
    trigger = data.get("triggerInfo", {})
    if not isinstance(trigger, dict) or len(str(trigger.get("reason", ""))) > 500:
        return _bad(handler, "triggerInfo.reason must be at most 500 characters.")
    action = state.action(action_id)
    if action is None:
        return _bad(handler, f"Remote action {action_id} not found.", "REMOTE_ACTION_NOT_FOUND")
    if not action.get("targeting", {}).get("apiEnabled"):
        return _bad(handler, f"Remote action {action_id} cannot be triggered through the API.", "API_NOT_ENABLED")
    request_id = state.create_request(action, devices, expires)
    handler._json(200, {"requestId": request_id, "expiresInMinutes": expires})


def _nql(handler: Any, state: InfinityState, client: dict[str, Any], data: Any) -> None:
    if not client.get("nql", True):
        handler._json(403, {"message": "Not authorized to execute NQL queries.", "code": 403})
        return
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("queryId"), str)
        or not NQL_ID_RE.fullmatch(data["queryId"])
    ):
        handler._json(400, {"message": "queryId must match ^#[a-z0-9_]{2,255}$.", "code": 400})
        return
    parameters = data.get("parameters") or {}
    if not isinstance(parameters, dict) or not all(isinstance(v, str) for v in parameters.values()):
        handler._json(400, {"message": "parameters must be an object of strings.", "code": 400})
        return
    query_id = data["queryId"]
    with state.lock:
        found = [(name, dict(q)) for name, q in state.queries.items() if q["id"] == query_id]
    if not found:
        handler._json(404, {"message": f"Query {query_id} not found.", "code": 404})
        return
    name, query = found[0]
    problem = _query_problem(query_id, query["nql"], parameters) if query["nql"] else None
    if problem:
        handler._json(400, {"message": problem, "code": 400})
        return
    if name == "devices":
        if "user_name" not in parameters:
            handler._json(400, {"message": "Missing parameter user_name.", "code": 400})
            return
        rows = state.device_rows(parameters["user_name"])
    else:
        if "request_id" not in parameters:
            handler._json(400, {"message": "Missing parameter request_id.", "code": 400})
            return
        rows = state.execution_rows(
            parameters["request_id"], parameters.get("device_uid"), workflows=name == "workflow_executions"
        )
    if handler.headers.get("x-utc-times", "").lower() != "true":
        # As Nexthink does: without the header, times come in the tenant's regional zone, unlabelled.
        zone = ZoneInfo(state.config.get("regional_time_zone", REGIONAL_TIME_ZONE))
        rows = [
            {key: _regional(value, zone) if key in TIME_FIELDS else value for key, value in row.items()} for row in rows
        ]
    handler._json(
        200,
        {
            "queryId": query_id,
            "executedQuery": f"(simulated) {query_id}",
            "rows": len(rows),
            "executionDateTime": _iso(state.now()),
            "data": rows,
        },
    )


def _query_problem(query_id: str, nql: str, parameters: dict[str, str]) -> str | None:
    problem = nql_problem(nql)
    if problem:
        return f"Query {query_id}: {problem}"
    declared, sent = declared_parameters(nql), set(parameters)
    if declared != sent:
        missing = ", ".join(f"${p}" for p in sorted(declared - sent)) or "none"
        unknown = ", ".join(sorted(sent - declared)) or "none"
        return (
            f"Query {query_id}: the parameters sent ({', '.join(sorted(sent)) or 'none'}) are not those the query "
            f"declares ({', '.join(f'${p}' for p in sorted(declared)) or 'none'}): missing {missing}; "
            f"not declared {unknown}."
        )
    return None


TIME_FIELDS = ("time", "device.last_seen", "request_time")
REGIONAL_TIME_ZONE = "America/New_York"  # hours away from UTC whatever the season


def _regional(value: Any, zone: ZoneInfo) -> Any:
    """A UTC time ("...Z") as the tenant's regional wall-clock time, without a zone, as NQL gives it."""
    if not isinstance(value, str) or not value.endswith("Z"):
        return value
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")


# --- helpers -------------------------------------------------------------------------------------------
def _json_body(handler: Any, body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        handler._json(400, {"code": "INVALID_REQUEST", "message": "The body is not valid JSON."})
        return None


def _bearer(handler: Any) -> str:
    scheme, _, token = handler.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _basic(handler: Any) -> tuple[str | None, str]:
    scheme, _, value = handler.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, ""
    try:
        client_id, _, secret = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, ""
    return client_id, secret
