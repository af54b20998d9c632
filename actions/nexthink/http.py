"""What both Nexthink clients share on the wire: one HTTP call bounded by a wall-clock deadline, the
record of whether the request was written whole, and the sorting of every failure into the error
kinds of errors.py (permanent, retryable, unknown)."""

from __future__ import annotations

import contextlib
import email.utils
import logging
import socket
import threading
from datetime import UTC, datetime
from typing import Any

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool

from .errors import TRANSPORT_REASONS, ActApiError, ErrorKind

log = logging.getLogger(__name__)

# 502/503 say that the request was not handed on (a proxy's page, or a server refusing work), 429
# that it was refused: nothing can have been accepted. Any other 5xx may come after the Engines were
# asked (INTERNAL_ERROR, a proxy's 504 Gateway Timeout): the action may run, so it is never resent.
NOT_ACCEPTED_STATUSES = {429, 502, 503}
GATEWAY_TIMEOUT = 504
# The longest Retry-After the client passes on; a longer one is cut to this.
MAX_RETRY_AFTER_SECONDS = 3600
NOT_JSON = object()


def call_timeout(connect: float, read: float) -> dict[str, Any]:
    """The `timeout` keyword argument of a requests call.

    `total` bounds the whole call too: an answer that trickles in cannot hold a worker thread for
    ever (Celery's time limits do not apply to the threads pool). requests hands a urllib3 Timeout
    on as it is, though its type stubs only know a number or a (connect, read) pair: the argument
    goes through this mapping."""
    return {"timeout": urllib3.Timeout(connect=connect, read=read, total=connect + read)}


def json_body(response: requests.Response) -> Any:
    # Content-Type is not trusted either way: a proxy's HTML page fails to parse and that is what counts.
    try:
        return response.json()
    except ValueError:
        return NOT_JSON


def bad_response(detail: str, status: int | None) -> ActApiError:
    return ActApiError(
        code=None,
        reason="BAD_RESPONSE",
        message=f"Nexthink's answer could not be read: {detail}.",
        http_status=status,
        kind=ErrorKind.UNKNOWN,
    )


def classify_http_error(status: int, data: Any, *, retry_after: float | None = None) -> ActApiError:
    """An HTTP answer other than 200, as an ActApiError of the right kind."""
    if status in NOT_ACCEPTED_STATUSES:
        kind = ErrorKind.RETRYABLE
    elif status >= 500:
        kind = ErrorKind.UNKNOWN
    else:  # 4xx and any 3xx: a refusal or a configuration problem that sending again will not fix
        kind = ErrorKind.PERMANENT
    after = retry_after if kind is ErrorKind.RETRYABLE else None
    if isinstance(data, dict) and isinstance(data.get("code"), str):
        code = data["code"][:100]
        message = str(data.get("error") or data.get("message") or code)
        return ActApiError(code=code, message=message, http_status=status, kind=kind, retry_after=after)
    if status == 401:
        reason = "UNAUTHORIZED"
    elif status == 404:
        reason = "NOT_FOUND"
    elif status in NOT_ACCEPTED_STATUSES:
        reason = "UNAVAILABLE"
    elif status == GATEWAY_TIMEOUT:
        reason = "TIMEOUT"
    elif status >= 500:
        reason = "SERVER_ERROR"
    else:
        reason = "HTTP_ERROR"
    return ActApiError(
        code=None,
        reason=reason,
        message=f"{TRANSPORT_REASONS[reason]} (HTTP {status})",
        http_status=status,
        kind=kind,
        retry_after=after,
    )


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (a number, or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def transport_error(exc: requests.RequestException, call: Deadline) -> ActApiError:
    """A call that got no HTTP answer, as an ActApiError: the call's own record says whether it was sent."""
    if call.expired and call.request_written:
        return deadline_error(call.seconds)
    return classify_transport_error(exc, request_written=call.request_written)


def classify_transport_error(exc: requests.RequestException, *, request_written: bool) -> ActApiError:
    """No HTTP answer: was the request sent (the action may have run) or not?

    `request_written` is what the call recorded, not a guess from the exception's type: a TLS error
    or a reset can come as well while the answer is read, after Nexthink had the whole request.
    """
    if request_written:
        # Nexthink may have taken the request; whatever broke afterwards, the action may have run.
        reason = "TIMEOUT" if isinstance(exc, requests.exceptions.Timeout) else "CONNECTION_LOST"
        kind = ErrorKind.UNKNOWN
    elif isinstance(exc, requests.exceptions.SSLError):
        # The TLS handshake failed (or TLS broke while the request went out): Nexthink never had it whole.
        reason, kind = "TLS_ERROR", ErrorKind.RETRYABLE
    elif isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        # Refused, unreachable, a connect timeout, or the connection broke while the request went out.
        reason, kind = "CONNECTION_FAILED", ErrorKind.RETRYABLE
    elif isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        reason, kind = "NOT_FOUND", ErrorKind.PERMANENT
    else:  # anything else the client does not expect: never resent
        reason, kind = "CONNECTION_LOST", ErrorKind.UNKNOWN
    return ActApiError(
        code=None,
        reason=reason,
        message=f"{TRANSPORT_REASONS[reason]} ({type(exc).__name__})",
        http_status=None,
        kind=kind,
    )


# --- The wall-clock deadline, and what the call sent ------------------------------------------------
# urllib3's timeouts bound each wait on the socket, not the whole call: a server that trickles one
# byte at a time could hold a worker thread for ever. Every socket a call uses is registered with
# the call's Deadline, which shuts it down when the time is up. The Deadline is the one object per
# call that the connection can reach (through `_current`), so it also records whether the request
# was written whole: what decides whether a failed call may be sent again.
_current = threading.local()


class Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self.request_written = False  # every byte of the request, body included, went to the socket
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()
        _current.deadline = None

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.expired:
                _shut(sock)
            else:
                self._sockets.append(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def deadline_error(seconds: float) -> ActApiError:
    return ActApiError(
        code=None,
        reason="TIMEOUT",
        message=f"{TRANSPORT_REASONS['TIMEOUT']} (no complete answer within {seconds:.0f} s)",
        http_status=None,
        kind=ErrorKind.UNKNOWN,
    )


class _WatchedConnectionMixin(urllib3.connection.HTTPConnection):
    def request(self, *args, **kwargs):
        # urllib3's HTTPConnection.request returns once the request line, headers and whole body were
        # handed to the socket; it raises if any of it could not be. (getresponse() alone would not
        # do: the pool swallows a broken pipe or a reset while sending and asks for the answer anyway.)
        super().request(*args, **kwargs)
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.request_written = True

    def getresponse(self, *args, **kwargs):
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.watch(self.sock)
        return super().getresponse(*args, **kwargs)


class _HTTPConnection(_WatchedConnectionMixin, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnectionMixin, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def new_session() -> requests.Session:
    session = requests.Session()
    adapter = _WatchedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def tls_verify() -> bool | str:
    """What `requests` verifies Nexthink's certificate with: the CA bundle when one is set (both platforms)."""
    from django.conf import settings

    verify: bool | str = settings.NEXTHINK_VERIFY_TLS
    if verify and settings.NEXTHINK_CA_BUNDLE:
        verify = settings.NEXTHINK_CA_BUNDLE
    return verify
