"""A ServiceNow-like Table API for incidents, for the demo and the tests. Standard library only.

Served on its own (``manage.py servicenow_simulator --port 8766``, or ``start_in_thread()`` in a
test), and also mounted in the Act API simulator (``route`` is called first by its handler), so the
demo's ``TICKETING=servicenow`` works with the one simulator process the demo already runs.

    POST /api/now/table/incident   Basic portal/portal-demo or a Bearer token; JSON body → 201
                                   {"result": {"number": "INC0010001", "sys_id": ..., ...}}
    GET  /api/now/table/incident?sysparm_query=correlation_id=<id>[^field=value...]&sysparm_limit=1
    POST /oauth_token.do           grant_type=client_credentials, client_id=portal-client,
                                   client_secret=portal-client-secret → {"access_token", "expires_in"}
    GET  /_sim/incidents           the incidents created, oldest first
    GET  /_sim/incident_requests   every Table API request (method, path, query, body, auth scheme)
    POST /_sim/servicenow/faults   {"fault": "500"|"drop", "times": 1, "create": true|false}
                                   500: answer HTTP 500 (creating the incident first if "create");
                                   drop: close the connection without an answer (default create: true)
    POST /_sim/servicenow/reset    forget incidents, requests, faults and tokens
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

INCIDENT_PATH = "/api/now/table/incident"
FIRST_NUMBER = 10001
USERS = {"portal": "portal-demo"}
CLIENTS = {"portal-client": "portal-client-secret"}
# sys_user, as far as caller_id needs it: e-mail and user name both resolve.
SYS_USERS = [
    {"sys_id": "a1" * 16, "user_name": "alice", "email": "alice@corp.example", "name": "Alice Martin"},
    {"sys_id": "b2" * 16, "user_name": "bob", "email": "bob@corp.example", "name": "Bob Keller"},
]
PATHS = (INCIDENT_PATH, "/oauth_token.do", "/_sim/incidents", "/_sim/incident_requests", "/_sim/servicenow/")


class ServiceNowState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "lock", threading.Lock()):
            self.incidents: list[dict[str, Any]] = []
            self.requests: list[dict[str, Any]] = []
            self.faults: list[dict[str, Any]] = []
            self.tokens: set[str] = set()
            self.next_number = FIRST_NUMBER

    def take_fault(self) -> dict[str, Any] | None:
        with self.lock:
            if not self.faults:
                return None
            fault = self.faults[0]
            fault["times"] -= 1
            if fault["times"] == 0:
                self.faults.pop(0)
            return fault

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            number = f"INC{self.next_number:07d}"
            self.next_number += 1
            caller = str(body.get("caller_id", ""))
            user = next((u for u in SYS_USERS if caller in (u["email"], u["user_name"], u["sys_id"])), None)
            incident = {
                **{k: str(v) for k, v in body.items()},
                "number": number,
                "sys_id": uuid.uuid4().hex,
                "state": "1",
                "caller_id": user["sys_id"] if user else "",
                "caller_display": user["name"] if user else "",
            }
            self.incidents.append(incident)
            return incident

    def query(self, sysparm_query: str) -> list[dict[str, Any]]:
        terms = [term.partition("=") for term in sysparm_query.split("^") if term]
        with self.lock:
            return [i for i in self.incidents if all(i.get(field) == value for field, _, value in terms)]


def state_of(server: Any) -> ServiceNowState:
    if getattr(server, "servicenow", None) is None:
        server.servicenow = ServiceNowState()
    return server.servicenow


def route(handler: BaseHTTPRequestHandler) -> bool:
    """Answer the request if it is one of ours; False leaves it to the caller."""
    parts = urlsplit(handler.path)
    if not parts.path.startswith(PATHS):
        return False
    state = state_of(handler.server)
    method = handler.command
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    raw = _body(handler) if method == "POST" else b""
    if parts.path == "/_sim/incidents" and method == "GET":
        with state.lock:
            _json(handler, 200, list(state.incidents))
    elif parts.path == "/_sim/incident_requests" and method == "GET":
        with state.lock:
            _json(handler, 200, list(state.requests))
    elif parts.path == "/_sim/servicenow/reset" and method == "POST":
        state.reset()
        _json(handler, 200, {"ok": True})
    elif parts.path == "/_sim/servicenow/faults" and method == "POST":
        fault = json.loads(raw or b"{}")
        fault.setdefault("times", 1)
        fault.setdefault("create", fault.get("fault") == "drop")
        with state.lock:
            state.faults.append(fault)
        _json(handler, 200, {"ok": True})
    elif parts.path == "/oauth_token.do" and method == "POST":
        _token(handler, state, raw)
    elif parts.path == INCIDENT_PATH and method in ("GET", "POST"):
        _incident(handler, state, method, query, raw)
    else:
        _json(handler, 404, {"error": {"message": "Invalid URL", "detail": parts.path}, "status": "failure"})
    return True


def _incident(handler, state: ServiceNowState, method: str, query: dict[str, str], raw: bytes) -> None:
    scheme = _authorised(handler, state)
    body: Any = None
    if method == "POST":
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
    with state.lock:
        state.requests.append({"method": method, "path": INCIDENT_PATH, "query": query, "body": body, "auth": scheme})
    if scheme is None:
        _json(
            handler,
            401,
            {
                "error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"},
                "status": "failure",
            },
        )
        return
    if method == "GET":
        found = state.query(query.get("sysparm_query", ""))
        limit = int(query.get("sysparm_limit") or len(found) or 1)
        fields = [f for f in query.get("sysparm_fields", "").split(",") if f]
        rows = [{f: i.get(f, "") for f in fields} if fields else i for i in found[:limit]]
        _json(handler, 200, {"result": rows})
        return
    if not isinstance(body, dict) or not body.get("short_description"):
        _json(
            handler,
            400,
            {"error": {"message": "Invalid request: a JSON object with short_description"}, "status": "failure"},
        )
        return
    fault = state.take_fault()
    incident = state.create(body) if fault is None or fault.get("create") else None
    if fault and fault.get("fault") == "drop":
        handler.close_connection = True  # no answer at all: the client cannot tell what happened
        return
    if fault:
        _json(handler, 500, {"error": {"message": "Simulated server error"}, "status": "failure"})
        return
    _json(handler, 201, {"result": incident})


def _authorised(handler, state: ServiceNowState) -> str | None:
    scheme, _, value = handler.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        with state.lock:
            return "bearer" if value in state.tokens else None
    if scheme.lower() == "basic":
        try:
            username, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return "basic" if USERS.get(username) == password else None
    return None


def _token(handler, state: ServiceNowState, raw: bytes) -> None:
    form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
    if form.get("grant_type") != "client_credentials" or CLIENTS.get(form.get("client_id", "")) != form.get(
        "client_secret"
    ):
        _json(handler, 401, {"error": "access_denied", "error_description": "access_denied"})
        return
    token = secrets.token_urlsafe(24)
    with state.lock:
        state.tokens.add(token)
    _json(handler, 200, {"access_token": token, "token_type": "Bearer", "expires_in": 1799, "scope": "useraccount"})


def _body(handler) -> bytes:
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length > 0 else b""


def _json(handler, status: int, data: Any) -> None:
    body = json.dumps(data).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ServiceNowSimulator/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def do_GET(self) -> None:
        if not route(self):
            _json(self, 404, {"error": {"message": "Invalid URL"}, "status": "failure"})

    do_POST = do_GET


class ServiceNowServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    verbose = False

    def __init__(self, address: tuple[str, int]):
        super().__init__(address, Handler)
        self.servicenow = ServiceNowState()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def start_in_thread(host: str = "127.0.0.1", port: int = 0) -> ServiceNowServer:
    """A running simulator on a free loopback port; call .shutdown() and .server_close() when done."""
    server = ServiceNowServer((host, port))
    threading.Thread(target=server.serve_forever, name="servicenow-simulator", daemon=True).start()
    return server
