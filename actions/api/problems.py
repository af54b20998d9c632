"""Refusals as RFC 9457 problem details (application/problem+json), each with a stable `type`."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpResponse
from ninja import Schema

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "/api/v1/problems/"

# type: (HTTP status, title). The types are stable: clients branch on them, never on the words.
TYPES: dict[str, tuple[int, str]] = {
    "unauthorized": (401, "No valid API token"),
    "scope-missing": (403, "The client may not do this"),
    "rate-limited": (429, "Too many calls"),
    "body-too-large": (413, "The request body is too large"),
    "invalid-parameter": (422, "A parameter is not valid"),
    "unknown-employee": (404, "No such employee"),
    "not-visible": (404, "No such action for this employee"),
    "not-your-device": (404, "Not the employee's device"),
    "run-not-found": (404, "No such run for this employee"),
    "cooldown": (409, "The action ran on this device recently"),
    "limit": (409, "A limit on runs is reached"),
    "not-available": (409, "The action is not available for this device"),
    "idempotency-conflict": (409, "The Idempotency-Key was used with other values"),
    # The action needs IT's approval and no `reason` was given (with one, the run waits for approval).
    "approval-needed": (403, "The run needs an approval first"),
    "feedback-closed": (409, "The run can no longer be answered"),
    "help-not-available": (409, "IT cannot be asked about this run from here"),
}


class Problem(Exception):
    """Raised anywhere in the API; rendered by problem_response."""

    def __init__(
        self,
        type_: str,
        detail: str,
        *,
        field: str = "",
        retry_at: datetime | None = None,
        retry_after: int | None = None,
    ):
        super().__init__(detail)
        if type_ not in TYPES:
            raise ValueError(f"unknown problem type {type_!r}")
        self.type = type_
        self.status, self.title = TYPES[type_]
        self.detail = detail
        self.field = field
        self.retry_at = retry_at
        self.retry_after = retry_after


class ProblemOut(Schema):
    type: str
    title: str
    status: int
    detail: str
    field: str | None = None
    retry_at: datetime | None = None


def problem_response(request, problem: Problem) -> HttpResponse:
    body = ProblemOut(
        type=TYPE_BASE + problem.type,
        title=problem.title,
        status=problem.status,
        detail=problem.detail,
        field=problem.field or None,
        retry_at=problem.retry_at,
    )
    response = HttpResponse(body.model_dump_json(exclude_none=True), status=problem.status, content_type=CONTENT_TYPE)
    if problem.retry_after is not None:
        response["Retry-After"] = str(problem.retry_after)
    if problem.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    request.api_problem = problem.type  # the call log's "problem"
    return response
