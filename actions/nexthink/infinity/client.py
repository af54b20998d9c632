"""The Nexthink Infinity client: OAuth2 token, Remote Actions API and NQL API, on the classic client's seam.

Beside the classic Act API v2 client (client.py) and sharing its HTTP pieces: a session whose every
socket is watched by a wall-clock Deadline, and the same error taxonomy (errors.py). What differs:
a Bearer token from an OAuth2 client-credentials grant (cached per process, shared by threads), one
asynchronous request per run (`execute` answers with a request id, not with what ran), and an
outcome read back later through saved NQL queries.

Facts not confirmed by the public documentation, and what this client does about them, are listed
in the README ("Nexthink Infinity").
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import requests

from actions import metrics
from actions.uids import COLLECTOR_UID_RE, NQL_ACTION_ID_RE, NQL_QUERY_ID_RE
from actions.wallclock import Deadline, new_session

from ..errors import ActApiError, ActInputError, ErrorKind
from ..http import (
    NOT_JSON,
    bad_response,
    call_timeout,
    classify_http_error,
    json_body,
    observed,
    parse_retry_after,
    tls_verify,
    transport_error,
)

log = logging.getLogger(__name__)

EXECUTE_PATH = "/api/v1/act/execute"
REMOTE_ACTIONS_PATH = "/api/v1/act/remote-action"
NQL_PATH = "/api/v2/nql/execute"
WORKFLOWS_PATH = "/api/v1/workflows"
WORKFLOW_EXECUTE_PATH = "/api/v2/workflows/execute"
# The workflow list's two filters, both required by the API: the portal runs a workflow on one device
# for one employee, through the API, so it lists those that depend on a device (with or without a user).
WORKFLOW_DEPENDENCIES = ("DEVICE", "USER_AND_DEVICE")
WORKFLOW_TRIGGER_METHOD = "API"
# The user principal name as the workflow execute API's schema has it.
UPN_RE = re.compile(r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$")
# The NQL API answers times in the tenant's regional time zone, without saying which, unless asked
# for UTC: every NQL call asks, so that a time read without a zone is UTC.
UTC_TIMES = {"x-utc-times": "true"}
TOKEN_SCOPE = "service:integration"  # noqa: S105 - an OAuth2 scope, not a secret

# Identifiers, one rule each (actions/uids.py): NQL query ids as the NQL API's schema says, remote
# action ids as `#name`, Collector UIDs as UUIDs; anything else is refused before sending.
NQL_ID_RE = NQL_QUERY_ID_RE
REMOTE_ACTION_ID_RE = NQL_ACTION_ID_RE
MAX_DEVICES = 10_000
MIN_EXPIRES_MINUTES = 60
MAX_EXPIRES_MINUTES = 10_080
MAX_REASON_LENGTH = 500
# A token is renewed this long before Nexthink says it expires (clock skew, a call in flight).
TOKEN_RENEW_MARGIN_SECONDS = 60
DEFAULT_TOKEN_LIFETIME_SECONDS = 900  # what Nexthink documents; used when an answer gives no expires_in


# --- Results ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Accepted:
    """Nexthink took the request: the action is *sent*, not done. Follow it up with `executions`."""

    request_id: str
    expires_in_minutes: int

    def as_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "expires_in_minutes": self.expires_in_minutes}


@dataclass(frozen=True)
class TriggerInfo:
    """Who asked, for Nexthink's audit: `reason` is cut to 500 characters."""

    external_source: str = "Fix my device"
    reason: str = ""
    external_reference: str = ""

    def as_body(self) -> dict[str, str]:
        body = {"externalSource": self.external_source, "reason": self.reason[:MAX_REASON_LENGTH]}
        if self.external_reference:
            body["externalReference"] = self.external_reference
        return body


class ExecutionStatus(StrEnum):
    WAITING = "waiting"  # Nexthink waits for the device to come online
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILURE = "failure"
    EXPIRED = "expired"  # the device did not come online before the request expired
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # a status this client does not know: still in progress until the request expires

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {ExecutionStatus.SUCCESS, ExecutionStatus.FAILURE, ExecutionStatus.EXPIRED, ExecutionStatus.CANCELLED}
)
# The exact strings of remote_action.executions.status are not in the public documentation: every
# spelling seen or likely is mapped, case, spaces and dashes aside; anything else is UNKNOWN.
_STATUS_WORDS: dict[str, ExecutionStatus] = {
    "waiting_for_device": ExecutionStatus.WAITING,
    "waiting": ExecutionStatus.WAITING,
    "pending": ExecutionStatus.WAITING,
    "queued": ExecutionStatus.WAITING,
    "submitted": ExecutionStatus.WAITING,
    "created": ExecutionStatus.WAITING,
    "in_progress": ExecutionStatus.IN_PROGRESS,
    "running": ExecutionStatus.IN_PROGRESS,
    "executing": ExecutionStatus.IN_PROGRESS,
    "started": ExecutionStatus.IN_PROGRESS,
    "success": ExecutionStatus.SUCCESS,
    "successful": ExecutionStatus.SUCCESS,
    "succeeded": ExecutionStatus.SUCCESS,
    "completed": ExecutionStatus.SUCCESS,
    "failure": ExecutionStatus.FAILURE,
    "failed": ExecutionStatus.FAILURE,
    "error": ExecutionStatus.FAILURE,
    "expired": ExecutionStatus.EXPIRED,
    "cancelled": ExecutionStatus.CANCELLED,
    "canceled": ExecutionStatus.CANCELLED,
}


def normalise_status(raw: str) -> ExecutionStatus:
    word = re.sub(r"[\s-]+", "_", str(raw or "").strip().lower())
    return _STATUS_WORDS.get(word, ExecutionStatus.UNKNOWN)


@dataclass(frozen=True)
class Execution:
    """One device's execution of one request, as the executions NQL query reports it."""

    device: str  # the Collector UID
    status: ExecutionStatus
    raw_status: str  # exactly what Nexthink sent, for display and audit
    status_details: str
    outputs: dict[str, str]
    time: str | None
    device_name: str = ""

    @property
    def is_final(self) -> bool:
        return self.status.is_final

    def as_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "status": str(self.status),
            "raw_status": self.raw_status,
            "status_details": self.status_details,
            "outputs": dict(self.outputs),
            "time": self.time,
        }


@dataclass(frozen=True)
class InfinityDevice:
    collector_uid: str
    name: str
    platform: str
    last_seen: str | None  # as NQL gave it (ISO 8601 in every example); parsed by the caller


@dataclass(frozen=True)
class ActionInput:
    id: str  # the parameter name sent in `params`
    name: str
    description: str
    options: tuple[str, ...]
    allow_custom_value: bool
    # Which systems' scripts read it (usedByWindows, usedByMacOs); not said: both.
    used_by_windows: bool = True
    used_by_macos: bool = True


@dataclass(frozen=True)
class ActionOutput:
    id: str
    name: str
    type: str
    description: str


@dataclass(frozen=True)
class InfinityRemoteAction:
    id: str  # the NQL id, "#name": what `execute` takes
    uuid: str
    name: str
    description: str
    api_enabled: bool
    purpose: tuple[str, ...]
    timeout_seconds: int | None
    inputs: tuple[ActionInput, ...]
    outputs: tuple[ActionOutput, ...]
    # Which systems its script exists for (scriptInfo.hasScriptWindows, hasScriptMacOs); not said: both.
    has_script_windows: bool = True
    has_script_macos: bool = True
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)


@dataclass(frozen=True)
class InfinityWorkflow:
    id: str  # the NQL id, "#name": what the workflow execute API takes as workflowId
    uuid: str
    name: str
    description: str
    active: bool  # status ACTIVE: a version of it is active, so it can be triggered
    raw: dict[str, Any] = field(repr=False, compare=False)


# --- The token ---------------------------------------------------------------------------------------
# A failed token request is remembered this long: callers meanwhile get its error without a new request.
TOKEN_FAILURE_SECONDS = 5


class _Fetch:
    """One token request in flight: the threads that need the same token wait for its result."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.token = ""
        self.error: BaseException | None = None


class TokenCache:
    """One Bearer token per (token URL, client id, secret), shared by every thread of the process.

    One token request per key is in flight at a time: the other threads that need that token wait
    for its result instead of each sending their own (and each waiting its full timeout behind a
    failing token endpoint). A failure is remembered TOKEN_FAILURE_SECONDS and raised again to every
    caller meanwhile, without a new request (a retryable one says so in its retry_after, so that a
    run's automatic retry does not spend an attempt on it). The token is renewed TOKEN_RENEW_MARGIN_SECONDS before
    it expires, and dropped when Nexthink answers 401 with it.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, failure_seconds: float = TOKEN_FAILURE_SECONDS):
        self._clock = clock
        self._failure_seconds = failure_seconds
        self._lock = threading.Lock()  # held only to read and change the dictionaries, never over a request
        self._tokens: dict[str, tuple[str, float]] = {}  # key -> (token, renew at)
        self._failures: dict[str, tuple[ActApiError, float]] = {}  # key -> (error, raised again until)
        self._fetches: dict[str, _Fetch] = {}  # key -> the request in flight

    def get(self, key: str, fetch: Callable[[], tuple[str, float]]) -> str:
        while True:
            with self._lock:
                cached = self._tokens.get(key)
                if cached is not None and self._clock() < cached[1]:
                    return cached[0]
                failed = self._failures.get(key)
                if failed is not None and self._clock() < failed[1]:
                    raise _again(failed[0])
                flight = self._fetches.get(key)
                leader = flight is None
                if flight is None:
                    flight = self._fetches[key] = _Fetch()
            if leader:
                return self._fetch(key, flight, fetch)
            # Bounded: the request in flight ends within its own connect + read timeout.
            flight.done.wait()
            if flight.error is None:
                return flight.token
            if isinstance(flight.error, ActApiError):
                raise _again(flight.error)
            # The fetching thread was stopped by something other than Nexthink's answer: ask again.

    def _fetch(self, key: str, flight: _Fetch, fetch: Callable[[], tuple[str, float]]) -> str:
        try:
            token, lifetime = fetch()
        except BaseException as error:
            with self._lock:
                if isinstance(error, ActApiError):
                    if error.kind is ErrorKind.RETRYABLE:
                        # Sending again within the window only meets this failure again: a retry waits it out.
                        error.retry_after = max(error.retry_after or 0, self._failure_seconds)
                    self._failures[key] = (error, self._clock() + self._failure_seconds)
                del self._fetches[key]
            flight.error = error
            flight.done.set()
            raise
        with self._lock:
            self._tokens[key] = (token, self._clock() + max(lifetime - TOKEN_RENEW_MARGIN_SECONDS, 0))
            self._failures.pop(key, None)
            del self._fetches[key]
        flight.token = token
        flight.done.set()
        return token

    def drop(self, key: str, token: str) -> None:
        """Forget `token` unless another thread already replaced it (one renewal for many 401s)."""
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and cached[0] == token:
                del self._tokens[key]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._failures.clear()


def _again(error: BaseException) -> BaseException:
    """A shared failure, raised again in another thread: a copy of an ActApiError, so that each
    thread's raise carries its own traceback."""
    if type(error) is ActApiError:
        return ActApiError(
            code=error.code,
            reason=error.reason,
            message=error.message,
            http_status=error.http_status,
            kind=error.kind,
            retry_after=error.retry_after,
        )
    return error


TOKENS = TokenCache()  # the process's cache


# --- The client ----------------------------------------------------------------------------------------
# The most HTTP calls an execute makes: the token, the execute; after a 401, a new token and the
# execute once more. A thread waiting for another's token request waits at most that one request.
EXECUTE_CALLS_AT_MOST = 4


def max_execute_seconds(connect_timeout: float, timeout: float) -> float:
    """The longest `InfinityClient.execute` can take: each of its calls ends within connect + read timeout."""
    return EXECUTE_CALLS_AT_MOST * (connect_timeout + timeout)


class InfinityClient:
    def __init__(
        self,
        *,
        api_url: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        verify: bool | str = True,
        timeout: float = 30,
        connect_timeout: float = 5,
        user_agent: str = "fix-my-device-portal",
        executions_query: str = "",
        devices_query: str = "",
        workflow_executions_query: str = "",
        retry_wait_limit: float = 0,
        tokens: TokenCache | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.api_url = api_url.rstrip("/")
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.executions_query = executions_query
        self.devices_query = devices_query
        self.workflow_executions_query = workflow_executions_query
        # NQL reads (never execute) wait out a 429's Retry-After once when it is no longer than this.
        self.retry_wait_limit = retry_wait_limit
        self._tokens = TOKENS if tokens is None else tokens
        self._sleep = sleep
        # The key never holds the secret itself: a digest, so that a rotated secret gets its own token.
        digest = hashlib.sha256(client_secret.encode()).hexdigest()[:16]
        self._token_key = f"{token_url}|{client_id}|{digest}"
        self.session = new_session()
        self.session.verify = verify
        self.session.trust_env = False  # no proxy or netrc from the environment: what is configured is used
        self.session.headers.update({"User-Agent": user_agent, "Accept": "application/json"})

    def __repr__(self) -> str:  # never show the secret or the token
        return f"<InfinityClient {self.api_url}>"

    # --- Remote Actions API ------------------------------------------------------------------------------
    def execute(
        self,
        *,
        remote_action_id: str,
        devices: list[str],
        params: dict[str, str] | None = None,
        expires_in_minutes: int | None = None,
        trigger_info: TriggerInfo | None = None,
        before_send: Callable[[], None] | None = None,
    ) -> Accepted:
        """Ask Nexthink to run an action on devices; returns the request id. Raises ActApiError.

        Never resent by this client except after a 401 (refused: nothing ran) with a fresh token.
        `before_send` is called once the token is in hand, right before each POST: whatever it raises
        stops the execute, and nothing is sent.
        """
        body = build_execute_body(
            remote_action_id=remote_action_id,
            devices=devices,
            params=params,
            expires_in_minutes=expires_in_minutes,
            trigger_info=trigger_info,
        )
        data = self._call("POST", EXECUTE_PATH, json=body, before_send=before_send)
        return parse_accepted(data, expires_in_minutes)

    def remote_actions(self) -> list[InfinityRemoteAction]:
        data = self._call("GET", REMOTE_ACTIONS_PATH)
        if not isinstance(data, list):
            raise bad_response("the remote action list is not a JSON list", 200)
        actions = []
        for item in data:
            action = parse_remote_action(item)
            if action is None:
                log.warning("Skipping a remote action without an id in Nexthink's list")
                continue
            actions.append(action)
        return actions

    # --- Workflows API ----------------------------------------------------------------------------------
    def workflows(self) -> list[InfinityWorkflow]:
        """The workflows that can be triggered through the API on a device: one list per dependency the
        API requires as a filter (DEVICE, USER_AND_DEVICE), merged by NQL id."""
        found: dict[str, InfinityWorkflow] = {}
        for dependency in WORKFLOW_DEPENDENCIES:
            data = self._call(
                "GET", WORKFLOWS_PATH, params={"dependency": dependency, "triggerMethod": WORKFLOW_TRIGGER_METHOD}
            )
            if not isinstance(data, list):
                raise bad_response("the workflow list is not a JSON list", 200)
            for item in data:
                workflow = parse_workflow(item)
                if workflow is None:
                    log.warning("Skipping a workflow without an id in Nexthink's list")
                    continue
                found.setdefault(workflow.id, workflow)
        return list(found.values())

    def execute_workflow(
        self,
        *,
        workflow_id: str,
        device: str,
        user_upn: str = "",
        params: dict[str, str] | None = None,
        follow_minutes: int = MIN_EXPIRES_MINUTES,
        before_send: Callable[[], None] | None = None,
    ) -> Accepted:
        """Trigger a workflow on one device (by Collector UID), for one employee (by UPN) when known.

        Never resent, as `execute`. Nexthink documents no expiry for a workflow request: the answer's
        `expires_in_minutes` is `follow_minutes`, how long the portal follows it up.
        """
        body = build_workflow_body(workflow_id=workflow_id, device=device, user_upn=user_upn, params=params)
        data = self._call("POST", WORKFLOW_EXECUTE_PATH, json=body, before_send=before_send)
        request_id = data.get("requestUuid") if isinstance(data, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise bad_response("the answer has no requestUuid", 200)
        return Accepted(request_id=request_id, expires_in_minutes=follow_minutes)

    def workflow_executions(self, request_id: str, device: str | None = None) -> list[Execution]:
        """The executions of one workflow request, from NEXTHINK_NQL_WORKFLOW_EXECUTIONS_QUERY (`$request_id`).

        The workflow's outcome and its details come as the outputs `outcome` and `outcome_details`.
        """
        if not isinstance(request_id, str) or not request_id.strip():
            raise ActInputError("A request id is needed.")
        if device is not None:
            _check_device(device)
        query = self._query("workflow executions", self.workflow_executions_query, "WORKFLOW_EXECUTIONS")
        rows = self.nql(query, {"request_id": request_id})
        executions = [parse_workflow_execution(row) for row in rows]
        return [e for e in executions if device is None or e.device.lower() == device.lower() or not e.device]

    # --- NQL API -----------------------------------------------------------------------------------------
    def nql(self, query_id: str, parameters: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Run a saved NQL query; each row as a dict of field name to value."""
        if not isinstance(query_id, str) or not NQL_ID_RE.fullmatch(query_id):
            raise ActInputError(f"An NQL query id must match #[a-z0-9_]{{2,255}}, got {query_id!r}.")
        for name, value in (parameters or {}).items():
            if not isinstance(name, str) or not name or not isinstance(value, str):
                raise ActInputError(f"NQL parameter {name!r} must be a string with a name.")
        body = {"queryId": query_id, "parameters": dict(parameters or {})}
        try:
            data = self._call("POST", NQL_PATH, json=body, headers=UTC_TIMES)
        except ActApiError as exc:
            if exc.http_status != 429 or exc.retry_after is None or exc.retry_after > self.retry_wait_limit:
                raise
            # A read changes nothing: waiting what Nexthink asked, then asking once more, is safe.
            self._sleep(exc.retry_after)
            data = self._call("POST", NQL_PATH, json=body, headers=UTC_TIMES)
        return parse_nql_rows(data)

    def executions(self, request_id: str, device: str | None = None) -> list[Execution]:
        """The executions of one request (on one device, or on all), from NEXTHINK_NQL_EXECUTIONS_QUERY.

        The saved query declares one parameter, `$request_id` (README): a request's rows are few, and
        the device is picked here, so that one saved query serves both.
        """
        if not isinstance(request_id, str) or not request_id.strip():
            raise ActInputError("A request id is needed.")
        if device is not None:
            _check_device(device)
        rows = self.nql(self._query("executions", self.executions_query), {"request_id": request_id})
        executions = [parse_execution(row) for row in rows]
        return [e for e in executions if device is None or e.device.lower() == device.lower() or not e.device]

    def devices_of_user(self, nexthink_user: str) -> list[InfinityDevice]:
        """The devices Nexthink links to a user, from NEXTHINK_NQL_DEVICES_QUERY."""
        if not isinstance(nexthink_user, str) or not nexthink_user.strip():
            raise ActInputError("A Nexthink user name is needed.")
        rows = self.nql(self._query("devices", self.devices_query), {"user_name": nexthink_user})
        devices = []
        for row in rows:
            device = parse_device(row)
            if device is None:
                log.warning("Skipping a device without a Collector UID in the devices query's answer")
                continue
            devices.append(device)
        return devices

    def _query(self, what: str, query_id: str, setting: str = "") -> str:
        if not query_id:
            setting = setting or what.upper()
            raise ActInputError(f"No saved NQL query is configured for {what} (NEXTHINK_NQL_{setting}_QUERY).")
        return query_id

    # --- The token -------------------------------------------------------------------------------------
    def _token(self) -> str:
        return self._tokens.get(self._token_key, self._fetch_token)

    def _fetch_token(self) -> tuple[str, float]:
        """POST the client-credentials grant; (access token, lifetime in seconds). Raises ActApiError."""
        with metrics.token_renewal():
            return self._request_token()

    def _request_token(self) -> tuple[str, float]:
        """Nothing of an action was sent when this fails, so a failure the seam calls UNKNOWN is
        RETRYABLE here; the error's message never carries the secret or the token.
        """
        try:
            response = self._send(
                "POST",
                self.token_url,
                auth=(self.client_id, self._secret),
                data={"grant_type": "client_credentials", "scope": TOKEN_SCOPE},
            )
        except ActApiError as exc:
            raise _token_error(exc) from None
        data = json_body(response)
        if response.status_code != 200:
            error = classify_http_error(
                response.status_code,
                _oauth_error(data),
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
            if response.status_code in (400, 401):
                error = ActApiError(
                    code=error.code,
                    reason="UNAUTHORIZED",
                    message="Nexthink refused the portal's client credentials (token request, HTTP "
                    f"{response.status_code}).",
                    http_status=response.status_code,
                    kind=ErrorKind.PERMANENT,
                )
            raise _token_error(error)
        token = data.get("access_token") if isinstance(data, dict) else None
        if data is NOT_JSON or not isinstance(token, str) or not token:
            raise _token_error(bad_response("the token answer has no access_token", 200))
        lifetime = data.get("expires_in", DEFAULT_TOKEN_LIFETIME_SECONDS)
        if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME_SECONDS
        log.info("Nexthink token obtained for client %s, valid %d s", self.client_id, lifetime)
        return token, float(lifetime)

    # --- HTTP ------------------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        before_send: Callable[[], None] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """An API call with the Bearer token; on a 401, once more with a new token. JSON or ActApiError.

        `before_send`, when given, is called right before each request, once its token is in hand.
        """
        token = self._token()
        if before_send is not None:
            before_send()
        response = self._send(method, self.api_url + path, headers=_bearer(token) | (headers or {}), **kwargs)
        if response.status_code == 401:
            # Refused before anything ran: the token expired or was revoked. One renewal, one retry.
            self._tokens.drop(self._token_key, token)
            token = self._token()
            if before_send is not None:
                before_send()
            response = self._send(method, self.api_url + path, headers=_bearer(token) | (headers or {}), **kwargs)
        status = response.status_code
        data = json_body(response)
        if status == 200:
            if data is NOT_JSON:
                raise bad_response("the answer was not JSON", status)
            return data
        error_data = data if isinstance(data, dict) else None
        if error_data is not None and not isinstance(error_data.get("code"), str) and "code" in error_data:
            # The NQL API's error codes are numbers: kept as text, like the Act API's.
            error_data = error_data | {"code": str(error_data["code"])}
        raise classify_http_error(
            status, error_data, retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )

    def _endpoint(self, path: str) -> str:
        """A call's label for Prometheus: "token", or the API path (a fixed list: the query ids are in the body)."""
        return "token" if path == self.token_url.split("?", 1)[0] else path.removeprefix(self.api_url)

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One HTTP call, over within connect + read timeout of wall-clock time whatever the server does."""
        started = time.monotonic()
        deadline = Deadline(self.connect_timeout + self.timeout)
        path = url.split("?", 1)[0]
        try:
            with deadline:
                response = self.session.request(
                    method,
                    url,
                    allow_redirects=False,
                    **call_timeout(self.connect_timeout, self.timeout),
                    **kwargs,
                )
        except requests.RequestException as exc:
            error = transport_error(exc, deadline)
            log.warning("Nexthink %s %s failed: %s", method, path, error)
            observed("infinity", self._endpoint(path), started, error=error)
            raise error from None
        observed("infinity", self._endpoint(path), started, status=response.status_code)
        log.info(
            "Nexthink %s %s -> %s in %.0f ms", method, path, response.status_code, (time.monotonic() - started) * 1000
        )
        return response


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _oauth_error(data: Any) -> dict[str, str] | None:
    """An OAuth2 error answer ({"error", "error_description"}) as the seam's {"code", "message"}."""
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return {"code": data["error"][:100], "message": str(data.get("error_description") or data["error"])}
    if isinstance(data, dict) and isinstance(data.get("code"), str):
        return data
    return None


def _token_error(error: ActApiError) -> ActApiError:
    kind = ErrorKind.RETRYABLE if error.kind is ErrorKind.UNKNOWN else error.kind
    return ActApiError(
        code=error.code,
        reason=error.reason,
        message=f"Getting a Nexthink token failed: {error.message}",
        http_status=error.http_status,
        kind=kind,
        retry_after=error.retry_after,
    )


# --- Bodies and answers ----------------------------------------------------------------------------------
def _check_device(uid: Any) -> None:
    if not isinstance(uid, str) or not COLLECTOR_UID_RE.fullmatch(uid):
        raise ActInputError(f"A Collector UID must be a UUID, got {uid!r}.")


def build_execute_body(
    *,
    remote_action_id: str,
    devices: list[str],
    params: dict[str, str] | None,
    expires_in_minutes: int | None,
    trigger_info: TriggerInfo | None,
) -> dict[str, Any]:
    """The JSON body of an execute, validated so that a request Nexthink would refuse is never sent."""
    if not isinstance(remote_action_id, str) or not REMOTE_ACTION_ID_RE.fullmatch(remote_action_id):
        raise ActInputError(f"A remote action id must look like #name, got {remote_action_id!r}.")
    if isinstance(devices, str) or not devices:
        raise ActInputError("At least one Collector UID is needed.")
    if len(devices) > MAX_DEVICES:
        raise ActInputError(f"At most {MAX_DEVICES} devices at once, got {len(devices)}.")
    for uid in devices:
        _check_device(uid)
    for name, value in (params or {}).items():
        if not isinstance(name, str) or not name:
            raise ActInputError("Parameter names must be non-empty strings.")
        if not isinstance(value, str):
            raise ActInputError(f"Parameter {name!r} must be a string, got {type(value).__name__}.")
    body: dict[str, Any] = {"remoteActionId": remote_action_id, "params": dict(params or {}), "devices": list(devices)}
    if expires_in_minutes is not None:
        if (
            isinstance(expires_in_minutes, bool)
            or not isinstance(expires_in_minutes, int)
            or not MIN_EXPIRES_MINUTES <= expires_in_minutes <= MAX_EXPIRES_MINUTES
        ):
            raise ActInputError(
                f"expiresInMinutes must be a whole number from {MIN_EXPIRES_MINUTES} to {MAX_EXPIRES_MINUTES}, "
                f"got {expires_in_minutes!r}."
            )
        body["expiresInMinutes"] = expires_in_minutes
    body["triggerInfo"] = (trigger_info or TriggerInfo()).as_body()
    return body


def parse_accepted(data: Any, asked_minutes: int | None) -> Accepted:
    request_id = data.get("requestId") if isinstance(data, dict) else None
    if not isinstance(request_id, str) or not request_id:
        # Taken (a 200) but no id: the action may run, and the portal cannot follow it up.
        raise bad_response("the answer has no requestId", 200)
    minutes = data.get("expiresInMinutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        minutes = asked_minutes or MIN_EXPIRES_MINUTES
    # Within what Nexthink documents: a wild value must not keep a run "following" for months.
    minutes = min(max(minutes, MIN_EXPIRES_MINUTES), MAX_EXPIRES_MINUTES)
    return Accepted(request_id=request_id, expires_in_minutes=minutes)


def parse_nql_rows(data: Any) -> list[dict[str, Any]]:
    """The rows of an NQL answer: `data` as objects (v2), or as arrays beside `headers` (v1's shape)."""
    rows = data.get("data") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise bad_response("the NQL answer has no data list", 200)
    headers = data.get("headers")
    result = []
    for row in rows:
        if isinstance(row, dict):
            result.append(row)
        elif isinstance(row, list) and isinstance(headers, list) and len(headers) == len(row):
            result.append(dict(zip((str(h) for h in headers), row, strict=True)))
        else:
            raise bad_response("an NQL row is neither an object nor a list matching the headers", 200)
    return result


def _field(row: dict[str, Any], *names: str) -> Any:
    """The first of several spellings of a field (`device.collector.uid`, `collector_uid`, ...) present."""
    for name in names:
        if name in row and row[name] is not None:
            return row[name]
    return None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def parse_outputs(value: Any) -> dict[str, str]:
    """Outputs come as an object, a JSON text of one, or a list of {name, value}: all as {name: text}."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            return {"output": value}
    if isinstance(value, dict):
        return {str(k): _text(v) for k, v in value.items()}
    if isinstance(value, list):
        outputs = {}
        for item in value:
            if isinstance(item, dict) and ("name" in item or "id" in item):
                outputs[str(item.get("name") or item.get("id"))] = _text(item.get("value"))
        return outputs
    return {}


def parse_execution(row: dict[str, Any]) -> Execution:
    raw_status = _text(_field(row, "remote_action.execution.status", "execution.status", "status"))
    outputs = _field(row, "remote_action.execution.outputs", "execution.outputs", "outputs")
    # Outputs saved as one column each (`outputs.<name>`) in the query are gathered too.
    prefixed = {k.split("outputs.", 1)[1]: _text(v) for k, v in row.items() if "outputs." in k and v is not None}
    return Execution(
        device=_text(_field(row, "device.collector.uid", "collector.uid", "collector_uid", "device_uid", "device")),
        status=normalise_status(raw_status),
        raw_status=raw_status,
        status_details=_text(
            _field(row, "remote_action.execution.status_details", "execution.status_details", "status_details")
        ),
        outputs=parse_outputs(outputs) | prefixed,
        time=_field(row, "remote_action.execution.time", "execution.time", "time"),
        device_name=_text(_field(row, "device.name", "device_name", "name")),
    )


def build_workflow_body(
    *, workflow_id: str, device: str, user_upn: str, params: dict[str, str] | None
) -> dict[str, Any]:
    """The v2 workflow execute body (external ids), validated so that a request Nexthink would refuse is never sent.

    The employee is named by UPN when it looks like one (the schema's pattern); otherwise only the
    device is sent, which the API accepts ("if devices are included, users are optional").
    """
    if not isinstance(workflow_id, str) or not REMOTE_ACTION_ID_RE.fullmatch(workflow_id):
        raise ActInputError(f"A workflow id must look like #name, got {workflow_id!r}.")
    _check_device(device)
    for name, value in (params or {}).items():
        if not isinstance(name, str) or not name or not isinstance(value, str):
            raise ActInputError(f"Parameter {name!r} must be a string with a name.")
    users = [{"upn": user_upn}] if isinstance(user_upn, str) and UPN_RE.fullmatch(user_upn) else []
    return {
        "workflowId": workflow_id,
        "devices": [{"collectorUid": device}],
        "users": users,
        "params": dict(params or {}),
    }


def parse_workflow(item: Any) -> InfinityWorkflow | None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        return None
    return InfinityWorkflow(
        id=item["id"],
        uuid=_text(item.get("uuid")),
        name=_text(item.get("name") or item["id"]),
        description=_text(item.get("description")),
        active=str(item.get("status", "")).upper() == "ACTIVE",
        raw=item,
    )


def parse_workflow_execution(row: dict[str, Any]) -> Execution:
    """A row of workflow.executions: status, status_details, outcome, outcome_details (README's query)."""
    raw_status = _text(_field(row, "workflow.execution.status", "execution.status", "status"))
    outputs = {
        name: _text(value)
        for name, value in (
            ("outcome", _field(row, "workflow.execution.outcome", "execution.outcome", "outcome")),
            ("outcome_details", _field(row, "workflow.execution.outcome_details", "outcome_details")),
        )
        if value not in (None, "")
    }
    return Execution(
        device=_text(_field(row, "device.collector.uid", "collector.uid", "collector_uid", "device_uid", "device")),
        status=normalise_status(raw_status),
        raw_status=raw_status,
        status_details=_text(
            _field(row, "workflow.execution.status_details", "execution.status_details", "status_details")
        ),
        outputs=outputs,
        time=_field(row, "request_time", "workflow.execution.time", "time"),
        device_name=_text(_field(row, "device.name", "device_name", "name")),
    )


def parse_device(row: dict[str, Any]) -> InfinityDevice | None:
    uid = _text(_field(row, "device.collector.uid", "collector.uid", "collector_uid"))
    if not uid:
        return None
    last_seen = _field(row, "device.last_seen", "last_seen")
    return InfinityDevice(
        collector_uid=uid,
        name=_text(_field(row, "device.name", "name")),
        platform=_text(_field(row, "device.operating_system.platform", "device.platform", "platform")),
        last_seen=None if last_seen is None else str(last_seen),
    )


def parse_remote_action(item: Any) -> InfinityRemoteAction | None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        return None
    targeting = item.get("targeting")
    if not isinstance(targeting, dict):
        targeting = {}
    script = item.get("scriptInfo")
    if not isinstance(script, dict):
        script = {}
    inputs = tuple(
        ActionInput(
            id=_text(i.get("id")),
            name=_text(i.get("name") or i.get("id")),
            description=_text(i.get("description")),
            options=tuple(_text(o) for o in (i.get("options") or []) if o is not None),
            allow_custom_value=bool(i.get("allowCustomValue")),
            used_by_windows=i.get("usedByWindows") is not False,
            used_by_macos=i.get("usedByMacOs") is not False,
        )
        for i in (script.get("inputs") or [])
        if isinstance(i, dict) and i.get("id")
    )
    outputs = tuple(
        ActionOutput(
            id=_text(o.get("id")),
            name=_text(o.get("name") or o.get("id")),
            type=_text(o.get("type")),
            description=_text(o.get("description")),
        )
        for o in (script.get("outputs") or [])
        if isinstance(o, dict) and o.get("id")
    )
    timeout = script.get("timeoutSeconds")
    return InfinityRemoteAction(
        id=item["id"],
        uuid=_text(item.get("uuid")),
        name=_text(item.get("name") or item["id"]),
        description=_text(item.get("description")),
        api_enabled=targeting.get("apiEnabled") is True,
        purpose=tuple(_text(p) for p in (item.get("purpose") or [])),
        timeout_seconds=timeout if isinstance(timeout, int) and not isinstance(timeout, bool) else None,
        inputs=inputs,
        outputs=outputs,
        has_script_windows=script.get("hasScriptWindows") is not False,
        has_script_macos=script.get("hasScriptMacOs") is not False,
        raw=item,
    )


def infinity_client_from_settings(tokens: TokenCache | None = None) -> InfinityClient:
    from django.conf import settings

    verify = tls_verify()
    return InfinityClient(
        api_url=settings.NEXTHINK_API_URL,
        token_url=settings.NEXTHINK_TOKEN_URL,
        client_id=settings.NEXTHINK_CLIENT_ID,
        client_secret=settings.NEXTHINK_CLIENT_SECRET,
        verify=verify,
        timeout=settings.NEXTHINK_API_TIMEOUT_SECONDS,
        connect_timeout=settings.NEXTHINK_CONNECT_TIMEOUT_SECONDS,
        user_agent=f"fix-my-device-portal/{settings.PORTAL_VERSION} (+Nexthink Infinity client)",
        executions_query=settings.NEXTHINK_NQL_EXECUTIONS_QUERY,
        devices_query=settings.NEXTHINK_NQL_DEVICES_QUERY,
        workflow_executions_query=settings.NEXTHINK_NQL_WORKFLOW_EXECUTIONS_QUERY,
        retry_wait_limit=settings.NEXTHINK_NQL_RETRY_WAIT_SECONDS,
        tokens=tokens,
    )
