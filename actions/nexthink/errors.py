"""The Act API's error taxonomy: what went wrong, and whether sending again is safe."""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    PERMANENT = "permanent"  # sending again gives the same answer
    RETRYABLE = "retryable"  # nothing ran; sending again may work
    UNKNOWN = "unknown"  # the request was sent and no answer came: the action may have run


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
    "CONNECTION_FAILED": "The portal could not reach Nexthink.",
    "TLS_ERROR": "The portal could not verify Nexthink's certificate.",
    "TIMEOUT": "Nexthink did not answer in time.",
    "CONNECTION_LOST": "The connection to Nexthink broke before its answer arrived.",
    "INVALID_INPUT": "The request was not valid, so it was not sent.",
}

# What an employee reads when a run fails with an Act API error code.
EMPLOYEE_SENTENCES: dict[str, str] = {
    "INVALID_REQUEST_JSON": "The portal sent Nexthink a request it could not read. IT has been told; please try again later.",
    "INVALID_REQUEST_CONTENT": "The portal sent Nexthink a request with missing or wrong details. Please contact IT.",
    "INTERNAL_ERROR": "Nexthink had an internal problem. The portal will try again; if it keeps failing, contact IT.",
    "CONTENT_TYPE": "The portal sent Nexthink a request in the wrong format. Please contact IT.",
    "ENCODING": "The portal sent Nexthink text in an encoding it does not accept. Please contact IT.",
    "NO_REMOTE_ACTION_UID": "The request did not say which action to run. Please contact IT.",
    "NO_DEVICES": "The request did not name your device. Please contact IT.",
    "TOO_MANY_DEVICES": "The request named more devices than Nexthink accepts at once. Please contact IT.",
    "INVALID_ACTION_UID": "This action is set up with an invalid identifier. Please contact IT.",
    "INVALID_DEVICE_UID": "Your device's identifier is not valid in Nexthink. Please contact IT.",
    "NO_PERMISSION": "The portal is not allowed to run actions in Nexthink. Please contact IT.",
    "UNKNOWN_OR_DISABLED_REMOTE_ACTION": "This action no longer exists in Nexthink or has been switched off. Please contact IT.",
    "NO_MANUAL_EXECUTION": "This action cannot be started on request in Nexthink. Please contact IT.",
    "NO_ENGINES_TO_TARGET": "Nexthink has no server it may send this action to. Please contact IT.",
    "UNAUTHORIZED": "The portal could not sign in to Nexthink. Please contact IT.",
    "NOT_FOUND": "The portal could not find Nexthink at its configured address. Please contact IT.",
    "HTTP_ERROR": "Nexthink gave an unexpected answer. Please try again later or contact IT.",
    "BAD_RESPONSE": "Nexthink's answer could not be read, so the portal cannot tell whether the action ran.",
    "UNAVAILABLE": "Nexthink is unavailable right now. The portal will try again.",
    "CONNECTION_FAILED": "The portal could not reach Nexthink. It will try again.",
    "TLS_ERROR": "The portal could not verify Nexthink's identity, so it sent nothing. Please contact IT.",
    "TIMEOUT": "Nexthink did not answer in time, so the portal cannot tell whether the action ran.",
    "CONNECTION_LOST": "The connection to Nexthink broke, so the portal cannot tell whether the action ran.",
    "INVALID_INPUT": "The request was not valid, so nothing was sent. Please contact IT.",
}


def employee_sentence(code: str) -> str:
    return EMPLOYEE_SENTENCES.get(code, "Something went wrong while sending the action. Please contact IT.")


class ActApiError(Exception):
    """Any failure of a call to Nexthink: an API error code, or a transport failure."""

    def __init__(self, *, code: str | None, message: str, http_status: int | None, kind: ErrorKind, reason: str = ""):
        # code: the Act API's own error code, None when Nexthink gave none (a transport failure).
        # reason: always set: the API code, or one of TRANSPORT_REASONS.
        self.code = code
        self.reason = reason or code or "HTTP_ERROR"
        self.message = message
        self.http_status = http_status
        self.kind = ErrorKind(kind)
        super().__init__(f"{self.reason} ({self.kind}): {message}")

    @property
    def employee_message(self) -> str:
        return employee_sentence(self.reason)

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "http_status": self.http_status, "kind": str(self.kind)}


class ActInputError(ActApiError, ValueError):
    """The request was invalid before sending: nothing went over the network."""

    def __init__(self, message: str):
        super().__init__(code=None, reason="INVALID_INPUT", message=message, http_status=None, kind=ErrorKind.PERMANENT)
