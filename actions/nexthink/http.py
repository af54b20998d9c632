"""What both Nexthink clients share on the wire: the sorting of every failure into the error kinds of
errors.py (permanent, retryable, unknown), using what the call's Deadline recorded (actions/wallclock.py)."""

from __future__ import annotations

import email.utils
import logging
import time
from datetime import UTC, datetime
from typing import Any

import requests
import urllib3

from actions import metrics
from actions.wallclock import Deadline

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


def kind_of_status(status: int) -> ErrorKind:
    """The error kind of an HTTP answer other than 200."""
    if status in NOT_ACCEPTED_STATUSES:
        return ErrorKind.RETRYABLE
    if status >= 500:
        return ErrorKind.UNKNOWN
    # 4xx and any 3xx: a refusal or a configuration problem that sending again will not fix
    return ErrorKind.PERMANENT


def observed(
    platform: str, endpoint: str, started: float, *, status: int = 0, error: ActApiError | None = None
) -> None:
    """One call to Nexthink, for Prometheus (actions/metrics.py): how long it took since `started`
    (time.monotonic), and its error kind when it failed (no answer, or an answer other than 200)."""
    kind = error.kind if error is not None else kind_of_status(status) if status != 200 else None
    seconds = time.monotonic() - started
    metrics.nexthink_call(platform=platform, endpoint=endpoint, seconds=seconds, error_kind=kind.value if kind else "")


def classify_http_error(status: int, data: Any, *, retry_after: float | None = None) -> ActApiError:
    """An HTTP answer other than 200, as an ActApiError of the right kind."""
    kind = kind_of_status(status)
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


def deadline_error(seconds: float) -> ActApiError:
    return ActApiError(
        code=None,
        reason="TIMEOUT",
        message=f"{TRANSPORT_REASONS['TIMEOUT']} (no complete answer within {seconds:.0f} s)",
        http_status=None,
        kind=ErrorKind.UNKNOWN,
    )


def tls_verify() -> bool | str:
    """What `requests` verifies Nexthink's certificate with: the CA bundle when one is set (both platforms)."""
    from django.conf import settings

    verify: bool | str = settings.NEXTHINK_VERIFY_TLS
    if verify and settings.NEXTHINK_CA_BUNDLE:
        verify = settings.NEXTHINK_CA_BUNDLE
    return verify
