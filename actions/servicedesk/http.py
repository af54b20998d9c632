"""The one outbound HTTP seam for ticketing: a session with timeouts, and errors sorted by what they mean.

Sorted like the Act API client's (DESIGN.md): *retryable* only where nothing can have been accepted
(connection refused, connect timeout, 429, a proxy's 502/503), *unknown* where the request may have
been taken (read timeout, a dropped connection, any other 5xx), *permanent* for the rest of 4xx.
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings

from actions.wallclock import Deadline, new_session

from .base import ErrorKind, TicketError

NOT_ACCEPTED = {429, 502, 503}
USER_AGENT = "fix-my-device-portal"


def session(*, verify: bool = True) -> requests.Session:
    # Nexthink's watched session: every socket of a call is shut when the call's deadline passes.
    s = new_session()
    s.trust_env = False  # no proxy or netrc from the environment: what is configured is used
    s.verify = verify
    s.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    return s  # no adapter retries: a POST that may have opened a ticket is never resent blindly


def timeouts() -> tuple[int, int]:
    return (settings.TICKETING_CONNECT_TIMEOUT_SECONDS, settings.TICKETING_READ_TIMEOUT_SECONDS)


def send(s: requests.Session, method: str, url: str, *, what: str, **kwargs: Any) -> requests.Response:
    """One request; a TicketError for any transport failure or non-2xx answer. `what`: for messages."""
    # The read timeout bounds each wait on the socket, not the call: a server that trickles its answer
    # could hold a worker past the point where the sweep takes the ticket for abandoned and sends it
    # again. The deadline ends the call first (stale_after() allows three whole calls).
    deadline = Deadline(sum(timeouts()))
    try:
        with deadline:
            response = s.request(method, url, timeout=timeouts(), allow_redirects=False, **kwargs)
    except (requests.ConnectionError, requests.ConnectTimeout) as exc:
        if deadline.expired:
            raise TicketError(ErrorKind.UNKNOWN, f"{what}: no complete answer in time.") from exc
        if isinstance(exc, requests.ConnectTimeout) or _refused(exc):
            raise TicketError(ErrorKind.RETRYABLE, f"{what}: could not connect.") from exc
        raise TicketError(ErrorKind.UNKNOWN, f"{what}: the connection dropped before an answer.") from exc
    except requests.RequestException as exc:
        if deadline.expired or isinstance(exc, requests.Timeout):
            raise TicketError(ErrorKind.UNKNOWN, f"{what}: no complete answer in time.") from exc
        raise TicketError(ErrorKind.PERMANENT, f"{what}: the request could not be made ({exc}).") from exc
    if 200 <= response.status_code < 300:
        return response
    status = response.status_code
    if status in NOT_ACCEPTED:
        raise TicketError(ErrorKind.RETRYABLE, f"{what}: busy or unreachable (HTTP {status}).")
    if status >= 500:
        raise TicketError(ErrorKind.UNKNOWN, f"{what}: server error (HTTP {status}).")
    if status in (401, 403):
        raise TicketError(ErrorKind.PERMANENT, f"{what}: the portal's credentials were refused (HTTP {status}).")
    raise TicketError(ErrorKind.PERMANENT, f"{what}: request refused (HTTP {status}): {response.text[:300]}")


def _refused(exc: Exception) -> bool:
    """A connection that was never made (refused, no route, name unknown): nothing was sent."""
    text = repr(exc)
    return any(
        sign in text
        for sign in ("NewConnectionError", "Connection refused", "Name or service not known", "No route to host")
    )


def json_of(response: requests.Response, *, what: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise TicketError(ErrorKind.UNKNOWN, f"{what}: the answer was not JSON.") from exc
