"""ServiceNow: an incident through the Table API.

    POST {SERVICENOW_INSTANCE_URL}/api/now/table/incident
         ?sysparm_input_display_value=true&sysparm_exclude_reference_link=true
    {"short_description", "description", "caller_id", "category", "assignment_group",
     "correlation_id": <run id>, "correlation_display": "fix-my-device", "contact_type": "self-service"}
    → 201 {"result": {"number": "INC0010001", "sys_id": "...", ...}}

caller_id and assignment_group are reference fields; with sysparm_input_display_value=true the
Table API resolves them by display value, so caller_id may carry the employee's e-mail (or user name,
SERVICENOW_CALLER_FIELD) and assignment_group the group's name. correlation_id is the run's id: after
an attempt whose outcome is unknown, the next one first asks
``GET /api/now/table/incident?sysparm_query=correlation_id=<run id>`` and reuses what it finds.
Auth: Basic (SERVICENOW_USERNAME/PASSWORD) or OAuth client credentials (a bearer token from
SERVICENOW_TOKEN_URL, kept until shortly before it expires).
"""

from __future__ import annotations

import threading
import time

from django.conf import settings

from . import http
from .base import Attempt, ErrorKind, Opened, TicketContent, TicketError

INCIDENT_PATH = "/api/now/table/incident"
CORRELATION_DISPLAY = "fix-my-device"
WHAT = "ServiceNow"

_token_lock = threading.Lock()
_token: dict[str, object] = {}


def open_ticket(content: TicketContent, attempt: Attempt) -> Opened:
    s = http.session(verify=settings.SERVICENOW_VERIFY_TLS)
    _authenticate(s)
    correlation_id = attempt.reference
    if attempt.uncertain:
        found = find_incident(s, correlation_id)
        if found:
            return found
    body = {
        "short_description": content.short_description,
        "description": content.description,
        "caller_id": caller_of(content),
        "category": content.category,
        "correlation_id": correlation_id,
        "correlation_display": CORRELATION_DISPLAY,
        "contact_type": "self-service",
    }
    if content.assignment_group:
        body["assignment_group"] = content.assignment_group
    response = http.send(
        s,
        "POST",
        settings.SERVICENOW_INSTANCE_URL + INCIDENT_PATH,
        what=WHAT,
        params={"sysparm_input_display_value": "true", "sysparm_exclude_reference_link": "true"},
        json=body,
    )
    return _opened(http.json_of(response, what=WHAT))


def find_incident(s, correlation_id: str) -> Opened | None:
    response = http.send(
        s,
        "GET",
        settings.SERVICENOW_INSTANCE_URL + INCIDENT_PATH,
        what=WHAT,
        params={
            "sysparm_query": f"correlation_id={correlation_id}",
            "sysparm_fields": "number,sys_id",
            "sysparm_limit": "1",
        },
    )
    found = (http.json_of(response, what=WHAT) or {}).get("result") or []
    return _opened({"result": found[0]}) if found else None


def caller_of(content: TicketContent) -> str:
    employee = content.facts["employee"]
    if settings.SERVICENOW_CALLER_FIELD == "email" and employee["email"]:
        return employee["email"]
    return employee["username"]


def _opened(data) -> Opened:
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, dict):
        result = {}
    number = result.get("number")
    if not number:
        # The incident may exist: the next attempt looks it up by correlation id.
        raise TicketError(ErrorKind.UNKNOWN, f"{WHAT}: the answer had no incident number.")
    return Opened(number=str(number)[:100], external_id=str(result.get("sys_id") or "")[:100])


def _authenticate(s) -> None:
    if settings.SERVICENOW_AUTH == "basic":
        s.auth = (settings.SERVICENOW_USERNAME, settings.SERVICENOW_PASSWORD)
    else:
        s.headers["Authorization"] = f"Bearer {_bearer_token(s)}"


def _bearer_token(s) -> str:
    """OAuth client credentials; one token per process, fetched again a minute before it expires."""
    with _token_lock:
        key = (settings.SERVICENOW_TOKEN_URL, settings.SERVICENOW_CLIENT_ID)
        expires = _token.get("expires")
        if _token.get("key") == key and isinstance(expires, float) and expires > time.monotonic() + 60:
            return str(_token["value"])
        response = http.send(
            s,
            "POST",
            settings.SERVICENOW_TOKEN_URL,
            what=f"{WHAT} sign-in",
            data={
                "grant_type": "client_credentials",
                "client_id": settings.SERVICENOW_CLIENT_ID,
                "client_secret": settings.SERVICENOW_CLIENT_SECRET,
            },
        )
        data = http.json_of(response, what=f"{WHAT} sign-in")
        token = data.get("access_token") if isinstance(data, dict) else None
        if not token:
            raise TicketError(ErrorKind.PERMANENT, f"{WHAT} sign-in: the answer had no access_token.")
        _token.update(key=key, value=token, expires=time.monotonic() + float(data.get("expires_in") or 1800))
        return str(token)
