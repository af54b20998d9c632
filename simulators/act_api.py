"""A simulator of the Nexthink web interface's Act API v2 and List Engines API.

Pure standard library, so it starts fast as its own process (`manage.py act_simulator`) or in a
thread of a test. It follows ../shared/reference/act-api-v2.txt: every request rule and error code
with its HTTP status, the per-Engine answer list and Engine targeting. Faults can be injected per
action (in the JSON config) or at run time through the /_sim/ control endpoints:

    POST /_sim/faults   {"fault": "internal_error"|"html_500"|"html_502"|"html_503"|"html_504"|"html_200"|"close"|"drop"
                                  |"hang"|"latency"|"too_many"|"trickle"|"answer"|"not_tls",
                         "action": "<uid>" or "*", "times": 1 (0: until reset), "seconds": 5,
                         "retry_after": "3" (too_many's Retry-After header),
                         "status": 400, "body": <JSON> (answer: exactly this answer)}
                        trickle: a 200 whose answer comes one byte every `seconds` (default 0.5)
                        not_tls: once the whole request is read, bytes that are not TLS are written
                        beneath TLS (on the https simulator): the client's read of the answer fails
                        with a TLS error although Nexthink had the request
    GET  /_sim/requests the Act API requests received (no credentials), oldest first, each with
                        `received_at` and, once answered, `answered_at` (Unix time, seconds)
    POST /_sim/reset    forget requests and faults (and NXQL changes, below)

An action's "latency_seconds" is how long its calls take; with "latency_sigma" that is the median of
a log-normal spread (0.3: p5 0.6x, p95 1.6x). The config's "max_concurrent" caps the calls worked on
at once; the others wait their turn.

It also answers an Engine's NXQL API (`GET /2/query?query=...&platform=windows&format=json`) from the
config's "devices", understanding the small part of NXQL the portal sends (select fields from device,
where `eq` a field a `(string "...")` or `(pattern "...")`), and its template parameters: a bare `%1`
in the query stands for the `p1` parameter as one string literal, whatever quotes or backslashes it
holds (`(string %1)` with `p1=o"brien` compares with exactly `o"brien`). One instance stands for one
Engine when the config names it ("nxql_engine": "<databaseUID>"): /2/query then answers with that
Engine's devices only; without it, /2/query answers with all devices.
`/_sim/engines/<databaseUID>/2/query` answers as that Engine whatever the config says, so one
process can stand for every Engine of the demo.

    POST /_sim/nxql          {"devices": [...]} replaces the devices; {"hang_seconds": 5} holds each
                             query that long before answering; {"answer": <JSON>, "status": 200}
                             makes every NXQL query get exactly that answer (null: compute again)
    GET  /_sim/nxql_requests the NXQL queries received (path, query, params p1.., platforms, format, user)

The same server also answers the Nexthink Infinity API (token, Remote Actions, NQL): see
infinity.py, to which the routing below hands those paths and any fault with a "target".
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import random
import re
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from simulators import servicenow as servicenow_simulator

from . import infinity as simulator_infinity

DEFAULT_CONFIG_PATH = Path(__file__).with_name("act_api.json")
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
HEX32_RE = re.compile(r"^[0-9a-fA-F]{32}$")
FAULTS = {
    "internal_error",
    "html_500",
    "html_502",
    "html_503",
    "html_504",
    "html_200",
    "close",
    "drop",
    "hang",
    "latency",
    "too_many",
    "trickle",
    "answer",
    "not_tls",
}

ERROR_TEXT = {
    "INVALID_REQUEST_JSON": "Request body is not valid JSON",
    "INVALID_REQUEST_CONTENT": "Request content is not valid",
    "INTERNAL_ERROR": "Internal error",
    "CONTENT_TYPE": "Content type must be application/json",
    "ENCODING": "Request must be encoded in UTF-8",
    "NO_REMOTE_ACTION_UID": "No remote action UID provided",
    "NO_DEVICES": "No devices provided",
    "TOO_MANY_DEVICES": "Too many devices provided",
    "INVALID_ACTION_UID": "Invalid remote action UID",
    "INVALID_DEVICE_UID": "Invalid device UID",
    "NO_PERMISSION": "User has no permission to use the API of remote actions",
    "UNKNOWN_OR_DISABLED_REMOTE_ACTION": "Remote action unknown or disabled",
    "NO_MANUAL_EXECUTION": "Remote action not configured for manual execution",
    "NO_ENGINES_TO_TARGET": "No Engines to target",
}
ERROR_STATUS = {code: 400 for code in ERROR_TEXT} | {
    "INTERNAL_ERROR": 500,
    "NO_PERMISSION": 403,
    "NO_ENGINES_TO_TARGET": 403,
}
PROXY_PAGE = (
    "<html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1><hr>nginx</body></html>"
)


class ApiError(Exception):
    def __init__(self, code: str):
        self.code = code


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    return json.loads(Path(path or DEFAULT_CONFIG_PATH).read_text())


class SimulatorState:
    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self.initial_devices = copy.deepcopy(config.get("devices", []))
        self.nxql_requests: list[dict[str, Any]] = []
        self.nxql_answer: dict[str, Any] | None = None  # {"answer": ..., "status": ...} overrides NXQL
        self.nxql_hang = 0.0
        # "max_concurrent": at most this many Act API calls are worked on at once, the others wait
        # their turn (as behind a server with a few workers); 0 or absent: no cap.
        cap = int(config.get("max_concurrent", 0))
        self.slots: Any = threading.BoundedSemaphore(cap) if cap > 0 else contextlib.nullcontext()

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.faults.clear()
            self.nxql_requests.clear()
            self.nxql_answer = None
            self.nxql_hang = 0.0
            self.config["devices"] = copy.deepcopy(self.initial_devices)

    def set_nxql(self, change: dict[str, Any]) -> None:
        if not isinstance(change, dict):
            raise ValueError("expected a JSON object")
        with self.lock:
            if "devices" in change:
                if not isinstance(change["devices"], list) or not all(isinstance(d, dict) for d in change["devices"]):
                    raise ValueError("devices must be a list of objects")
                self.config["devices"] = copy.deepcopy(change["devices"])
            if "hang_seconds" in change:  # accept the connection, then answer nothing for this long
                self.nxql_hang = float(change["hang_seconds"] or 0)
            if "answer" in change:
                status = change.get("status", 200)
                if not isinstance(status, int) or not 100 <= status <= 599:
                    raise ValueError("status must be an HTTP status code")
                self.nxql_answer = None if change["answer"] is None else {"answer": change["answer"], "status": status}

    def devices(self, engine_uid: str | None) -> list[dict[str, Any]]:
        with self.lock:
            devices = copy.deepcopy(self.config.get("devices", []))
        if engine_uid is None:
            return devices
        return [d for d in devices if str(d.get("engine", "")).lower() == engine_uid.lower()]

    def add_fault(self, fault: dict[str, Any]) -> None:
        if fault.get("fault") not in FAULTS:
            raise ValueError(f"fault must be one of {sorted(FAULTS)}")
        entry = {"action": "*", "times": 1, "seconds": 0.0} | fault
        entry["action"] = str(entry["action"]).lower()
        with self.lock:
            self.faults.append(entry)

    def take_fault(self, action_uid: str) -> dict[str, Any] | None:
        """The first fault that applies to this action, counting down its remaining uses."""
        with self.lock:
            for fault in self.faults:
                if fault["action"] in ("*", action_uid.lower()):
                    if fault["times"] == 1:
                        self.faults.remove(fault)
                    elif fault["times"] > 1:
                        fault["times"] -= 1
                    return dict(fault)
        action = self.action(action_uid)
        if action and action.get("fault"):
            return {"fault": action["fault"], "seconds": action.get("fault_seconds", 0)}
        return None

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(entry)

    def answered(self, entry: dict[str, Any]) -> None:
        """Note when the answer was written (or the connection cut), beside `received_at`."""
        with self.lock:
            entry["answered_at"] = time.time()

    def user(self, username: str, password: str) -> dict[str, Any] | None:
        for user in self.config.get("users", []):
            if user["username"] == username and user["password"] == password:
                return user
        return None

    def action(self, uid: str) -> dict[str, Any] | None:
        for action in self.config.get("remote_actions", []):
            if action["uid"].lower() == uid.lower():
                return action
        return None

    def engines(self) -> list[dict[str, Any]]:
        return self.config.get("engines", [])


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a burst of calls from a worker's 100 threads would
    # see some connections dropped and retried a second later, a delay the real API does not add.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], config: dict[str, Any], ssl_context: ssl.SSLContext | None = None):
        super().__init__(address, Handler)
        self.state = SimulatorState(config)
        self.infinity = simulator_infinity.InfinityState(config.get("infinity"))  # the Infinity API
        self.scheme = "https" if ssl_context else "http"
        if ssl_context:
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return  # the client gave up first: expected with the hang and timeout faults
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host}:{port}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SimulatorServer
    server_version = "NexthinkSimulator/1.0"
    disable_nagle_algorithm = True  # one small answer per request: do not wait for delayed ACKs

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default; tests read /_sim/requests
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    # --- routing ----------------------------------------------------------------------------
    def do_GET(self) -> None:
        if servicenow_simulator.route(self):  # the ServiceNow-like Table API, for TICKETING=servicenow
            return
        path = self.path.split("?", 1)[0]
        if path == "/api/configuration/v1/engines":
            self._engines()
        elif path == "/2/query":
            self._nxql(self.server.state.config.get("nxql_engine"))
        elif (match := SIM_ENGINE_QUERY_RE.match(path)) is not None:
            uid = match.group(1)
            if not any(e["databaseUID"].lower() == uid.lower() for e in self.server.state.engines()):
                self._not_found()
            else:
                self._nxql(uid)
        elif path == "/_sim/nxql_requests":
            with self.server.state.lock:
                self._json(200, list(self.server.state.nxql_requests))
        elif path == "/_sim/requests":
            with self.server.state.lock:
                self._json(200, list(self.server.state.requests))
        elif path == "/_sim/health":
            self._json(200, {"ok": True})
        elif simulator_infinity.handles(path):
            simulator_infinity.handle(self, "GET", path, b"")
        else:  # GET on the run URL is a 404 too, as the article says
            self._not_found()

    def do_POST(self) -> None:
        if servicenow_simulator.route(self):
            return
        path = self.path.split("?", 1)[0]
        body = self._read_body()
        if body is None:
            return
        if path == "/api/remoteaction/v2/run":
            self._run(body)
        elif simulator_infinity.handles(path):
            simulator_infinity.handle(self, "POST", path, body)
        elif path == "/_sim/reset":
            self.server.state.reset()
            self.server.infinity.reset()
            self._json(200, {"ok": True})
        elif path == "/_sim/faults":
            try:
                fault = json.loads(body)
                # A fault with a "target" is for the Infinity API (infinity.py).
                state = self.server.infinity if isinstance(fault, dict) and "target" in fault else self.server.state
                state.add_fault(fault)
            except (ValueError, TypeError, AttributeError) as exc:
                self._json(400, {"error": str(exc)})
                return
            self._json(200, {"ok": True})
        elif path == "/_sim/nxql":
            try:
                self.server.state.set_nxql(json.loads(body))
            except (ValueError, TypeError) as exc:
                self._json(400, {"error": str(exc)})
                return
            self._json(200, {"ok": True})
        else:
            self._not_found()

    def do_PUT(self) -> None:
        self._read_body()
        self._not_found()

    do_DELETE = do_PUT

    # --- Act API v2 ---------------------------------------------------------------------------
    def _run(self, raw: bytes) -> None:
        state = self.server.state
        user = self._authenticate()
        if user is None:
            return
        entry = {
            "received_at": time.time(),
            "user": user["username"],
            "content_type": self.headers.get("Content-Type", ""),
            "user_agent": self.headers.get("User-Agent", ""),
            "body_text": raw.decode("utf-8", "replace"),
        }
        try:
            request = self._validate(user, raw)
        except ApiError as exc:
            entry |= {"body": None, "error": exc.code}
            state.record(entry)
            self._json(ERROR_STATUS[exc.code], {"code": exc.code, "error": ERROR_TEXT[exc.code]})
            state.answered(entry)
            return
        entry["body"] = request
        state.record(entry)
        fault = state.take_fault(request["remoteActionUid"])
        if fault and self._apply_fault(fault):
            state.answered(entry)
            return
        latency = fault["seconds"] if fault and fault["fault"] == "latency" else 0
        self._json(200, self._answers(user, request, extra_delay=latency))
        state.answered(entry)

    def _validate(self, user: dict[str, Any], raw: bytes) -> dict[str, Any]:
        if not user.get("api_access"):
            raise ApiError("NO_PERMISSION")
        media_type, _, options = self.headers.get("Content-Type", "").partition(";")
        if media_type.strip().lower() != "application/json":
            raise ApiError("CONTENT_TYPE")
        charset = re.search(r"charset\s*=\s*\"?([\w-]+)", options, re.I)
        if charset and charset.group(1).lower() not in ("utf-8", "utf8"):
            raise ApiError("ENCODING")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError("ENCODING") from None
        try:
            request = json.loads(text)
        except ValueError:
            raise ApiError("INVALID_REQUEST_JSON") from None
        self._check_content(request)
        action_uid = request.get("remoteActionUid")
        if not action_uid:
            raise ApiError("NO_REMOTE_ACTION_UID")
        if not GUID_RE.fullmatch(action_uid):
            raise ApiError("INVALID_ACTION_UID")
        devices = request.get("deviceUids") or []
        if not devices:
            raise ApiError("NO_DEVICES")
        if len(devices) > self.server.state.config.get("max_devices", 10000):
            raise ApiError("TOO_MANY_DEVICES")
        if not all(HEX32_RE.fullmatch(uid) for uid in devices):
            raise ApiError("INVALID_DEVICE_UID")
        action = self.server.state.action(action_uid)
        if action is None or not action.get("enabled", True):
            raise ApiError("UNKNOWN_OR_DISABLED_REMOTE_ACTION")
        if not action.get("manual", True):
            raise ApiError("NO_MANUAL_EXECUTION")
        if not self._permitted_engines(user):
            raise ApiError("NO_ENGINES_TO_TARGET")
        return request

    @staticmethod
    def _check_content(request: Any) -> None:
        """Field types; wrong ones are INVALID_REQUEST_CONTENT."""
        if not isinstance(request, dict):
            raise ApiError("INVALID_REQUEST_CONTENT")
        optional_str = ("requestUid", "remoteActionUid")
        if any(k in request and request[k] is not None and not isinstance(request[k], str) for k in optional_str):
            raise ApiError("INVALID_REQUEST_CONTENT")
        for key in ("deviceUids", "engineDatabaseUids"):
            value = request.get(key)
            if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise ApiError("INVALID_REQUEST_CONTENT")
        timeout = request.get("timeoutSeconds")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1):
            raise ApiError("INVALID_REQUEST_CONTENT")
        params = request.get("params")
        if params is not None and not (isinstance(params, dict) and all(isinstance(v, str) for v in params.values())):
            raise ApiError("INVALID_REQUEST_CONTENT")

    def _permitted_engines(self, user: dict[str, Any]) -> set[str]:
        allowed = user.get("engines", "*")
        uids = {e["databaseUID"] for e in self.server.state.engines()}
        return uids if allowed == "*" else uids & set(allowed)

    def _answers(self, user: dict[str, Any], request: dict[str, Any], extra_delay: float) -> list[dict[str, str]]:
        engines = {e["databaseUID"]: e for e in self.server.state.engines()}
        targets = request.get("engineDatabaseUids") or list(engines)
        permitted = self._permitted_engines(user)
        action = self.server.state.action(request["remoteActionUid"]) or {}
        timeout = request.get("timeoutSeconds") or 60
        latency = float(action.get("latency_seconds", 0))
        if action.get("latency_sigma"):  # a spread: latency_seconds is the median of a log-normal
            latency *= random.lognormvariate(0, float(action["latency_sigma"]))
        latency += float(extra_delay)
        with self.server.state.slots:
            time.sleep(min(latency, timeout))
        answers = []
        for uid in targets:
            engine = engines.get(uid)
            if engine is None:
                answers.append({"databaseUid": uid, "code": "excluded", "message": "Unknown databaseUid"})
            elif uid not in permitted:
                answers.append(
                    {"databaseUid": uid, "code": "no_permission", "message": "User has no permission on the Engine"}
                )
            elif latency > timeout and engine.get("answer", "ok") == "ok":
                answers.append({"databaseUid": uid, "code": "timeout", "message": f"No answer within {timeout} s"})
            else:
                answers.append(
                    {"databaseUid": uid, "code": engine.get("answer", "ok"), "message": engine.get("message", "")}
                )
        return answers

    def _apply_fault(self, fault: dict[str, Any]) -> bool:
        """Carry out a fault; True when it answered (or dropped) the request itself."""
        kind = fault["fault"]
        if kind == "internal_error":
            self._json(500, {"code": "INTERNAL_ERROR", "error": ERROR_TEXT["INTERNAL_ERROR"]})
        elif kind in ("html_500", "html_502", "html_503", "html_504", "html_200"):
            status = int(kind[-3:])
            reason = {
                200: "OK",
                500: "Internal Server Error",
                502: "Bad Gateway",
                503: "Service Temporarily Unavailable",
                504: "Gateway Time-out",
            }[status]
            self._send(status, PROXY_PAGE.format(status=status, reason=reason).encode(), "text/html")
        elif kind == "too_many":
            headers = {"Retry-After": str(fault["retry_after"])} if fault.get("retry_after") is not None else {}
            self._send(429, b'{"code": "TOO_MANY_REQUESTS", "error": "Too many requests"}', "application/json", headers)
        elif kind == "answer":
            self._json(int(fault.get("status", 200)), fault.get("body"))
        elif kind == "trickle":  # a server that sends its answer one byte at a time
            body = b"[]" + b" " * 200
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            self.wfile.write(f"Content-Length: {len(body)}\r\n\r\n".encode())
            try:
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(float(fault.get("seconds") or 0.5))
            except OSError:
                pass  # the client hung up: what a deadline does
            self.close_connection = True
        elif kind == "close":  # the connection closes with no answer at all
            self.close_connection = True
            self.connection.shutdown(2)
        elif kind == "drop":  # the answer starts, then the connection breaks
            self.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n[{"data')
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
        elif kind == "not_tls":  # the answer's bytes are not TLS: what a broken middlebox or server sends
            socket.socket.sendall(self.connection, b"\x00 not TLS \x00\r\n")  # beneath the TLS layer
            self.close_connection = True
        elif kind == "hang":  # slower than any timeout the client should wait
            time.sleep(float(fault.get("seconds") or 3600))
            return False
        else:  # latency: handled by the caller through extra_delay
            return False
        return True

    # --- List Engines API -------------------------------------------------------------------
    def _engines(self) -> None:
        if self._authenticate() is None:
            return
        fields = ("name", "databaseUID", "address", "port", "status")
        engines = []
        for engine in self.server.state.engines():
            item = {key: engine.get(key) for key in fields}
            item |= {
                "machineID": engine.get("machineID", engine["databaseUID"][:16]),
                "description": engine.get("description", ""),
                "timezone": engine.get("timezone", "UTC"),
                "version": engine.get("version", "6.30.1.5"),
            }
            engines.append(item)
        self._json(200, engines)

    # --- NXQL API (an Engine's Web API v2) --------------------------------------------------------
    def _nxql(self, engine_uid: str | None) -> None:
        entry: dict[str, Any] = {}
        try:
            self._nxql_answer(engine_uid, entry)
        finally:
            entry["answered_at"] = time.time()  # what a test reads to see whether the answer came yet

    def _nxql_answer(self, engine_uid: str | None, entry: dict[str, Any]) -> None:
        state = self.server.state
        user = self._authenticate()
        if user is None:
            return
        params = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        query = (params.get("query") or [""])[0]
        template_values = {name: values[0] for name, values in params.items() if TEMPLATE_PARAM_RE.fullmatch(name)}
        platforms = params.get("platform") or []
        output = (params.get("format") or [""])[0]
        with state.lock:
            entry.update(
                {
                    "received_at": time.time(),
                    "path": self.path.split("?", 1)[0],
                    "engine": engine_uid,
                    "user": user["username"],
                    "user_agent": self.headers.get("User-Agent", ""),
                    "query": query,
                    "params": template_values,
                    "platforms": platforms,
                    "format": output,
                }
            )
            state.nxql_requests.append(entry)
            override = copy.deepcopy(state.nxql_answer)
            hang = state.nxql_hang
        if hang:
            time.sleep(hang)
        if not user.get("nxql_access", True):
            self._send(403, b"Forbidden", "text/plain")
            return
        if override is not None:
            self._json(override["status"], override["answer"])
            return
        if output.lower() != "json":
            self._send(400, b"The simulator answers format=json only.", "text/plain")
            return
        if not platforms or any(p not in NXQL_PLATFORMS for p in platforms):
            self._send(400, b"platform must be windows, mac_os or mobile.", "text/plain")
            return
        try:
            fields, conditions = parse_select(query, template_values)
        except NxqlSyntaxError as exc:
            self._send(400, f"NXQL error: {exc}".encode(), "text/plain")
            return
        records = []
        for device in state.devices(engine_uid):
            if device.get("platform", "windows") not in platforms:
                continue
            values = nxql_device_values(device)
            if all(condition(values) for condition in conditions):
                records.append({field: values.get(field) for field in fields})
        self._json(200, records)

    # --- helpers ------------------------------------------------------------------------------
    def _authenticate(self) -> dict[str, Any] | None:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        user = None
        if scheme.lower() == "basic":
            try:
                username, _, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
                user = self.server.state.user(username, password)
            except (binascii.Error, UnicodeDecodeError):
                user = None
        if user is None:
            self._send(401, b"Unauthorized", "text/plain", {"WWW-Authenticate": 'Basic realm="Nexthink"'})
        return user

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._send(400, b"Bad Content-Length", "text/plain")
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _not_found(self) -> None:
        self._send(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html")

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


# --- A small part of NXQL --------------------------------------------------------------------------
SIM_ENGINE_QUERY_RE = re.compile(r"^/_sim/engines/([0-9a-fA-F]{32})/2/query$")
NXQL_PLATFORMS = {"windows", "mac_os", "mobile"}
NXQL_DEVICE_FIELDS = {"device_uid", "name", "last_logged_on_user", "last_seen", "platform", "engine"}
TEMPLATE_PARAM_RE = re.compile(r"p[1-9][0-9]*")
PLACEHOLDER_RE = re.compile(r"%([1-9][0-9]*)")


class NxqlSyntaxError(ValueError):
    pass


class NxqlString(str):
    """A quoted string in a query, as opposed to a bare word."""


def tokenize_nxql(text: str, template_values: dict[str, str] | None = None) -> list[str]:
    """The tokens of a query; a bare `%N` becomes the string literal of parameter pN, never query text."""
    template_values = template_values or {}
    tokens: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "()":
            tokens.append(char)
            i += 1
        elif char == '"':
            i += 1
            chars = []
            while True:
                if i >= len(text):
                    raise NxqlSyntaxError("unterminated string")
                if text[i] == "\\":
                    if i + 1 >= len(text):
                        raise NxqlSyntaxError("unterminated string")
                    chars.append(text[i + 1])
                    i += 2
                elif text[i] == '"':
                    i += 1
                    break
                else:
                    chars.append(text[i])
                    i += 1
            tokens.append(NxqlString("".join(chars)))
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in '()"':
                i += 1
            word = text[start:i]
            if (placeholder := PLACEHOLDER_RE.fullmatch(word)) is not None:
                name = f"p{placeholder.group(1)}"
                if name not in template_values:
                    raise NxqlSyntaxError(f"{word} has no value: parameter {name} is missing")
                tokens.append(NxqlString(template_values[name]))
            else:
                tokens.append(word)
    return tokens


def parse_sexpr(text: str, template_values: dict[str, str] | None = None) -> Any:
    tokens = tokenize_nxql(text, template_values)
    position = 0

    def read() -> Any:
        nonlocal position
        if position >= len(tokens):
            raise NxqlSyntaxError("unbalanced parentheses")
        item = tokens[position]
        position += 1
        if isinstance(item, NxqlString) or item not in "()":
            return item
        if item == ")":
            raise NxqlSyntaxError("unexpected )")
        items = []
        while position < len(tokens) and not (tokens[position] == ")" and not isinstance(tokens[position], NxqlString)):
            items.append(read())
        if position >= len(tokens):
            raise NxqlSyntaxError("unbalanced parentheses")
        position += 1
        return items

    expression = read()
    if position != len(tokens):
        raise NxqlSyntaxError("text after the query")
    return expression


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.I | re.S)


def parse_select(query: str, template_values: dict[str, str] | None = None) -> tuple[list[str], list[Any]]:
    """(select FIELDS (from device (where device (eq FIELD (string|pattern "...")) ...)) (limit N)?)

    `template_values` ({"p1": ...}) fill the query's `%1`.. placeholders, each as a string literal.
    """
    expression = parse_sexpr(query, template_values)
    if not isinstance(expression, list) or len(expression) < 3 or expression[0] != "select":
        raise NxqlSyntaxError("expected (select ...)")
    fields = expression[1] if isinstance(expression[1], list) else [expression[1]]
    for field in fields:
        if isinstance(field, list | NxqlString) or field not in NXQL_DEVICE_FIELDS:
            raise NxqlSyntaxError(f"unknown field {field!r}")
    source = expression[2]
    if not isinstance(source, list) or len(source) < 2 or source[0] != "from" or source[1] != "device":
        raise NxqlSyntaxError("expected (from device ...)")
    for extra in expression[3:]:
        if not (isinstance(extra, list) and len(extra) == 2 and extra[0] == "limit" and str(extra[1]).isdigit()):
            raise NxqlSyntaxError("unsupported clause")
    conditions = []
    for clause in source[2:]:
        if not isinstance(clause, list) or len(clause) < 2 or clause[0] != "where" or clause[1] != "device":
            raise NxqlSyntaxError("expected (where device ...)")
        for condition in clause[2:]:
            if (
                not isinstance(condition, list)
                or len(condition) != 3
                or condition[0] != "eq"
                or condition[1] not in NXQL_DEVICE_FIELDS
                or not isinstance(condition[2], list)
                or len(condition[2]) != 2
                or condition[2][0] not in ("string", "pattern")
                or not isinstance(condition[2][1], NxqlString)
            ):
                raise NxqlSyntaxError('the simulator understands (eq FIELD (string|pattern "...")) only')
            field, (kind, value) = condition[1], condition[2]
            if kind == "string":
                conditions.append(lambda values, f=field, v=str(value): str(values.get(f) or "").lower() == v.lower())
            else:
                regex = _wildcard(str(value))
                conditions.append(lambda values, f=field, r=regex: r.fullmatch(str(values.get(f) or "")) is not None)
    return [str(f) for f in fields], conditions


def nxql_device_values(device: dict[str, Any]) -> dict[str, Any]:
    """A config device as NXQL fields; "last_seen_minutes_ago" gives a last_seen relative to now."""
    last_seen = device.get("last_seen")
    if last_seen is None and device.get("last_seen_minutes_ago") is not None:
        seen = time.time() - float(device["last_seen_minutes_ago"]) * 60
        last_seen = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seen))
    return {
        "device_uid": device.get("uid"),
        "name": device.get("name"),
        "last_logged_on_user": device.get("last_logged_on_user"),
        "last_seen": last_seen,
        "platform": device.get("platform", "windows"),
        "engine": device.get("engine"),
    }


def make_server(
    host: str = "127.0.0.1",
    port: int = 0,
    config: dict[str, Any] | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> SimulatorServer:
    context = None
    if certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
    return SimulatorServer((host, port), copy.deepcopy(config or load_config()), context)


def start_in_thread(**kwargs: Any) -> SimulatorServer:
    """A running simulator on a free loopback port; call .shutdown() and .server_close() when done."""
    server = make_server(**kwargs)
    threading.Thread(target=server.serve_forever, name="act-simulator", daemon=True).start()
    return server
