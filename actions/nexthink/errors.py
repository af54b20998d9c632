"""The Act API's error taxonomy: what went wrong, and whether sending again is safe."""

from __future__ import annotations

from enum import StrEnum

from django.utils.translation import gettext_noop


class ErrorKind(StrEnum):
    PERMANENT = "permanent"  # sending again gives the same answer
    RETRYABLE = "retryable"  # nothing can have been accepted; sending again may work
    UNKNOWN = "unknown"  # the request reached Nexthink and no usable answer came: the action may have run


# The 14 error codes of the Act API v2, with the HTTP status Nexthink gives each.
API_ERROR_STATUS: dict[str, int] = {
    "INVALID_REQUEST_JSON": 400,
    "INVALID_REQUEST_CONTENT": 400,
    "INTERNAL_ERROR": 500,
    "CONTENT_TYPE": 400,
    "ENCODING": 400,
    "NO_REMOTE_ACTION_UID": 400,
    "NO_DEVICES": 400,
    "TOO_MANY_DEVICES": 400,
    "INVALID_ACTION_UID": 400,
    "INVALID_DEVICE_UID": 400,
    "NO_PERMISSION": 403,
    "UNKNOWN_OR_DISABLED_REMOTE_ACTION": 400,
    "NO_MANUAL_EXECUTION": 400,
    "NO_ENGINES_TO_TARGET": 403,
}

# Reasons the client gives to failures that carry no Act API code.
TRANSPORT_REASONS = {
    "UNAUTHORIZED": "Nexthink refused the portal's credentials.",
    "NOT_FOUND": "The portal is pointed at the wrong Nexthink address.",
    "HTTP_ERROR": "Nexthink gave an unexpected answer.",
    "BAD_RESPONSE": "Nexthink's answer could not be read.",
    "UNAVAILABLE": "Nexthink is unavailable right now.",
    "SERVER_ERROR": "Nexthink answered with a server error.",
    "CONNECTION_FAILED": "The portal could not reach Nexthink.",
    "TLS_ERROR": "The portal could not verify Nexthink's certificate.",
    "TIMEOUT": "Nexthink did not answer in time.",
    "CONNECTION_LOST": "The connection to Nexthink broke before its answer arrived.",
    "INVALID_INPUT": "The request was not valid, so it was not sent.",
}

# What happened, in an employee's words, for each API code and transport reason. The next step
# (wait, run it again, contact IT) depends on the run's outcome and is added by the run lifecycle.
# Kept in English with the run, marked for translation: shown translated (actions/runs/wording.py).
WHAT_HAPPENED: dict[str, str] = {
    "INVALID_REQUEST_JSON": gettext_noop("Nexthink could not read the portal's request."),
    "INVALID_REQUEST_CONTENT": gettext_noop("Nexthink refused the request: details were missing or wrong."),
    "INTERNAL_ERROR": gettext_noop("Nexthink reported an internal problem after it received the request."),
    "CONTENT_TYPE": gettext_noop("Nexthink refused the request's format."),
    "ENCODING": gettext_noop("Nexthink refused the request's text encoding."),
    "NO_REMOTE_ACTION_UID": gettext_noop("The request did not say which action to run."),
    "NO_DEVICES": gettext_noop("The request did not name your device."),
    "TOO_MANY_DEVICES": gettext_noop("The request named more devices than Nexthink accepts at once."),
    "INVALID_ACTION_UID": gettext_noop("This action is set up with an identifier Nexthink does not accept."),
    "INVALID_DEVICE_UID": gettext_noop("Nexthink does not accept your device's identifier."),
    "NO_PERMISSION": gettext_noop("Nexthink does not allow the portal to run actions."),
    "UNKNOWN_OR_DISABLED_REMOTE_ACTION": gettext_noop(
        "This action no longer exists in Nexthink or has been switched off."
    ),
    "NO_MANUAL_EXECUTION": gettext_noop("Nexthink does not allow this action to be started on request."),
    "NO_ENGINES_TO_TARGET": gettext_noop("Nexthink has no server it may send this action to."),
    "UNAUTHORIZED": gettext_noop("Nexthink refused the portal's credentials."),
    "NOT_FOUND": gettext_noop("The portal could not find Nexthink at its configured address."),
    "HTTP_ERROR": gettext_noop("Nexthink gave an unexpected answer."),
    "SERVER_ERROR": gettext_noop("Nexthink answered with a server error after it received the request."),
    "BAD_RESPONSE": gettext_noop(
        "Nexthink's answer could not be read, so the portal cannot tell whether the action ran."
    ),
    "UNAVAILABLE": gettext_noop("Nexthink was busy or unavailable and did not take the request."),
    "CONNECTION_FAILED": gettext_noop("The portal could not connect to Nexthink."),
    "TLS_ERROR": gettext_noop("The portal could not verify Nexthink's certificate, so it sent nothing."),
    "TIMEOUT": gettext_noop("Nexthink did not answer in time, so the portal cannot tell whether the action ran."),
    "CONNECTION_LOST": gettext_noop(
        "The connection to Nexthink broke before its answer arrived, so the portal cannot tell whether the action ran."
    ),
    "INVALID_INPUT": "The request was not valid, so the portal did not send it.",
}


def what_happened(reason: str) -> str:
    return WHAT_HAPPENED.get(reason, gettext_noop("Something went wrong while sending the action."))


class ActApiError(Exception):
    """Any failure of a call to Nexthink: an API error code, or a transport failure."""

    def __init__(
        self,
        *,
        code: str | None,
        message: str,
        http_status: int | None,
        kind: ErrorKind,
        reason: str = "",
        retry_after: float | None = None,
    ):
        # code: the Act API's own error code, None when Nexthink gave none (a transport failure).
        # reason: always set: the API code, or one of TRANSPORT_REASONS.
        self.code = code
        self.reason = reason or code or "HTTP_ERROR"
        self.message = message
        self.http_status = http_status
        self.kind = ErrorKind(kind)
        # Seconds Nexthink asked the portal to wait (Retry-After), for a retryable error.
        self.retry_after = retry_after
        super().__init__(f"{self.reason} ({self.kind}): {message}")

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "http_status": self.http_status, "kind": str(self.kind)}


class ActInputError(ActApiError, ValueError):
    """The request was invalid before sending: nothing went over the network."""

    def __init__(self, message: str):
        super().__init__(code=None, reason="INVALID_INPUT", message=message, http_status=None, kind=ErrorKind.PERMANENT)
