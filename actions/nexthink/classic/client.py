"""The Act API v2 client (classic Nexthink): run an action, list the Engines; an Engine's NXQL API rides on it."""

from __future__ import annotations

import copy
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import requests
import requests.adapters

from actions.uids import CLASSIC_DEVICE_UID_RE, ENGINE_UID_RE, GUID_RE
from actions.wallclock import Deadline, new_session

from ..errors import ActInputError
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

RUN_PATH = "/api/remoteaction/v2/run"
ENGINES_PATH = "/api/configuration/v1/engines"


class EngineCode(StrEnum):
    OK = "ok"
    TIMEOUT = "timeout"
    ENGINE_ERROR = "engine_error"
    NOT_CONNECTED = "not_connected"
    EXCLUDED = "excluded"
    NO_PERMISSION = "no_permission"
    UNRECOGNISED = "unrecognised"  # a code this client does not know; kept, never a crash


@dataclass(frozen=True)
class EngineAnswer:
    database_uid: str
    code: EngineCode
    raw_code: str  # exactly what Nexthink sent, for display and audit
    message: str

    @property
    def ok(self) -> bool:
        return self.code is EngineCode.OK

    def as_dict(self) -> dict[str, str]:
        return {"databaseUid": self.database_uid, "code": self.raw_code, "message": self.message}


@dataclass(frozen=True)
class EngineInfo:
    database_uid: str
    name: str
    status: str
    address: str
    port: int | None
    raw: dict[str, Any]


def _engine_code(raw: str) -> EngineCode:
    try:
        return EngineCode(raw)
    except ValueError:
        return EngineCode.UNRECOGNISED


class ActClient:
    def __init__(
        self,
        *,
        base_url: str,
        username: str,
        password: str,
        verify: bool | str = True,
        default_timeout: int = 60,
        connect_timeout: float = 5,
        read_margin: float = 15,
        user_agent: str = "fix-my-device-portal",
    ):
        self.base_url = base_url.rstrip("/")
        self.default_timeout = default_timeout
        self.connect_timeout = connect_timeout
        self.read_margin = read_margin
        self.session = new_session()
        self.session.auth = (username, password)
        self.session.verify = verify
        self.session.trust_env = False  # no proxy or netrc from the environment: what is configured is used
        self.session.headers.update({"User-Agent": user_agent, "Accept": "application/json"})
        self._idle_since: float | None = None  # when the last call ended (its connection kept alive)

    def __repr__(self) -> str:  # never show credentials
        return f"<ActClient {self.base_url}>"

    # --- Act API v2 -------------------------------------------------------------------------
    def run(
        self,
        *,
        remote_action_uid: str,
        device_uids: list[str],
        engine_uids: list[str] | None = None,
        timeout_seconds: int | None = None,
        params: dict[str, str] | None = None,
        request_uid: str | None = None,
    ) -> list[EngineAnswer]:
        """Ask Nexthink to run an action; returns what each Engine answered. Raises ActApiError."""
        timeout = self.default_timeout if timeout_seconds is None else timeout_seconds
        body = build_run_body(
            remote_action_uid=remote_action_uid,
            device_uids=device_uids,
            engine_uids=engine_uids,
            timeout_seconds=timeout,
            params=params,
            request_uid=request_uid or str(uuid.uuid4()),
        )
        response = self._send("POST", RUN_PATH, json=body, read_timeout=timeout + self.read_margin)
        data = self._json_or_raise(response)
        return parse_engine_answers(data)

    # --- List Engines API -------------------------------------------------------------------
    def list_engines(self) -> list[EngineInfo]:
        response = self._send("GET", ENGINES_PATH, read_timeout=self.default_timeout)
        data = self._json_or_raise(response)
        if not isinstance(data, list):
            raise bad_response("the Engine list is not a JSON list", response.status_code)
        engines = []
        for item in data:
            uid = item.get("databaseUID") if isinstance(item, dict) else None
            if not isinstance(uid, str) or not uid:
                log.warning("Skipping an Engine without databaseUID in the List Engines answer")
                continue
            port = item.get("port")
            engines.append(
                EngineInfo(
                    database_uid=uid,
                    name=str(item.get("name") or ""),
                    status=str(item.get("status") or ""),
                    address=str(item.get("address") or ""),
                    port=port if isinstance(port, int) else None,
                    raw=item,
                )
            )
        return engines

    # --- Other Nexthink services on the same seam (an Engine's NXQL API, see nxql.py) --------
    def for_base_url(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        default_timeout: int | None = None,
    ) -> ActClient:
        """A client for another Nexthink address with this one's TLS, User-Agent and timeouts.

        Its own session (so that other credentials never leak into this one); the same error
        classification, since every call still goes through `_send` and `_json_or_raise`.
        """
        other = copy.copy(self)
        other.base_url = base_url.rstrip("/")
        if default_timeout is not None:
            other.default_timeout = default_timeout
        other.session = new_session()
        other.session.auth = (username, password or "") if username is not None else self.session.auth
        other.session.verify = self.session.verify
        other.session.trust_env = self.session.trust_env
        other.session.headers.clear()
        other.session.headers.update(self.session.headers)
        return other

    def get_json(self, path: str, *, params: Any = None, read_timeout: float | None = None) -> Any:
        """GET a JSON document under base_url; any answer but a 200 with JSON raises ActApiError."""
        timeout = self.default_timeout if read_timeout is None else read_timeout
        response = self._send("GET", path, params=params, read_timeout=timeout)
        return self._json_or_raise(response)

    # --- HTTP -------------------------------------------------------------------------------
    def _send(self, method: str, path: str, *, read_timeout: float, **kwargs: Any) -> requests.Response:
        """One HTTP call, over within connect + read timeout of wall-clock time whatever the server does."""
        url = self.base_url + path
        started = time.monotonic()
        if self._idle_since is not None and started - self._idle_since > KEEP_ALIVE_SECONDS:
            # A connection idle for longer may be closed by the server just as this call is sent, and
            # a request lost that way could not be told from one that ran: start a new one instead.
            self.session.close()
        self._idle_since = None
        deadline = Deadline(self.connect_timeout + read_timeout)
        try:
            with deadline:
                response = self.session.request(
                    method,
                    url,
                    allow_redirects=False,
                    **call_timeout(self.connect_timeout, read_timeout),
                    **kwargs,
                )
        except requests.RequestException as exc:
            self.session.close()  # nothing of a failed call's connection is reused
            error = transport_error(exc, deadline)
            log.warning("Nexthink %s %s failed: %s", method, path, error)
            observed("classic", path, started, error=error)
            raise error from None
        self._idle_since = time.monotonic()
        observed("classic", path, started, status=response.status_code)
        log.info(
            "Nexthink %s %s -> %s in %.0f ms", method, path, response.status_code, (time.monotonic() - started) * 1000
        )
        return response

    def _json_or_raise(self, response: requests.Response) -> Any:
        status = response.status_code
        data = json_body(response)
        if status == 200:
            if data is NOT_JSON:
                # The request was taken; an unreadable answer says nothing about what ran.
                raise bad_response("the answer was not JSON", status)
            return data
        raise classify_http_error(status, data, retry_after=parse_retry_after(response.headers.get("Retry-After")))


def build_run_body(
    *,
    remote_action_uid: str,
    device_uids: list[str],
    engine_uids: list[str] | None,
    timeout_seconds: int,
    params: dict[str, str] | None,
    request_uid: str,
) -> dict[str, Any]:
    """The JSON body of a run, validated so that a request Nexthink would refuse is never sent."""
    if not isinstance(remote_action_uid, str) or not GUID_RE.fullmatch(remote_action_uid):
        raise ActInputError(f"The remote action UID must be a GUID, got {remote_action_uid!r}.")
    if isinstance(device_uids, str) or not device_uids:
        raise ActInputError("At least one device UID is needed.")
    for uid in device_uids:
        if not isinstance(uid, str) or not CLASSIC_DEVICE_UID_RE.fullmatch(uid):
            raise ActInputError(f"A device UID must be 32 hexadecimal characters, got {uid!r}.")
    if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, int) or timeout_seconds < 1:
        raise ActInputError(f"The timeout must be a positive whole number of seconds, got {timeout_seconds!r}.")
    body: dict[str, Any] = {
        "requestUid": request_uid,
        "remoteActionUid": remote_action_uid,
        "deviceUids": list(device_uids),
        "timeoutSeconds": timeout_seconds,
    }
    if engine_uids:
        for uid in engine_uids:
            if not isinstance(uid, str) or not ENGINE_UID_RE.fullmatch(uid):
                raise ActInputError(f"An Engine UID must be 32 hexadecimal characters, got {uid!r}.")
        body["engineDatabaseUids"] = list(engine_uids)
    if params:
        for name, value in params.items():
            if not isinstance(name, str) or not name:
                raise ActInputError("Parameter names must be non-empty strings.")
            if not isinstance(value, str):
                raise ActInputError(f"Parameter {name!r} must be a string, got {type(value).__name__}.")
        body["params"] = dict(params)
    return body


def parse_engine_answers(data: Any) -> list[EngineAnswer]:
    if not isinstance(data, list):
        raise bad_response("expected a list of Engine answers", 200)
    answers = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("code"), str):
            raise bad_response("an Engine answer has no code", 200)
        raw_code = item["code"]
        answers.append(
            EngineAnswer(
                database_uid=str(item.get("databaseUid") or ""),
                code=_engine_code(raw_code),
                raw_code=raw_code,
                message=str(item.get("message") or ""),
            )
        )
    return answers


# Calls close together (a burst, a busy worker thread) reuse their connection: no new TCP and TLS
# handshake per run. Kept short of common server keep-alive timeouts (5 s and more).
KEEP_ALIVE_SECONDS = 2.0
_shared = threading.local()


def shared_client() -> ActClient:
    """This thread's client for the configured Nexthink, kept between calls (a new one when settings change).

    One per thread: a requests session is not meant to be shared by threads.
    """
    from django.conf import settings

    key = (
        settings.NEXTHINK_PORTAL_URL,
        settings.NEXTHINK_USERNAME,
        settings.NEXTHINK_PASSWORD,
        tls_verify(),
        settings.NEXTHINK_DEFAULT_TIMEOUT_SECONDS,
        settings.NEXTHINK_CONNECT_TIMEOUT_SECONDS,
        settings.NEXTHINK_READ_MARGIN_SECONDS,
    )
    if getattr(_shared, "key", None) != key:
        if getattr(_shared, "client", None) is not None:
            _shared.client.session.close()
        _shared.client, _shared.key = client_from_settings(), key
    return _shared.client


def client_from_settings() -> ActClient:
    from django.conf import settings

    verify = tls_verify()
    return ActClient(
        base_url=settings.NEXTHINK_PORTAL_URL,
        username=settings.NEXTHINK_USERNAME,
        password=settings.NEXTHINK_PASSWORD,
        verify=verify,
        default_timeout=settings.NEXTHINK_DEFAULT_TIMEOUT_SECONDS,
        connect_timeout=settings.NEXTHINK_CONNECT_TIMEOUT_SECONDS,
        read_margin=settings.NEXTHINK_READ_MARGIN_SECONDS,
        user_agent=f"fix-my-device-portal/{settings.PORTAL_VERSION} (+Nexthink Act API v2 client)",
    )
