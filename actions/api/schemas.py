"""What the API takes and gives: typed, bounded pydantic schemas (the OpenAPI document is made from them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from ninja import Field, Schema

from actions.apiclients import EMPLOYEE_MAX_LENGTH
from actions.catalog.parameters import CONTROL_CHARACTERS
from actions.runs.feedback import COMMENT_MAX_LENGTH
from actions.uids import DEVICE_UID_RE

Employee = Field(
    ...,
    min_length=1,
    max_length=EMPLOYEE_MAX_LENGTH,
    description="The employee this call is for: their user name, or their e-mail address as the directory knows it.",
    examples=["alice"],
)
PARAMS_MAX = 50
PARAM_VALUE_MAX_LENGTH = 2000


# Text without the control characters the feedback form refuses: the same rule, in the schema.
PLAIN_TEXT = f"^[^{CONTROL_CHARACTERS}]*$"


class ChoiceOut(Schema):
    value: str
    label: str


class ParameterOut(Schema):
    name: str = Field(..., description="The name to use in `params`.")
    label: str
    kind: str = Field(..., description='text, multiline, integer, choice or boolean ("true"/"false").')
    required: bool
    help_text: str
    default: str = Field(..., description="What is sent when the parameter is left out.")
    choices: list[ChoiceOut]
    max_length: int | None
    min_value: int | None
    max_value: int | None
    platforms: list[str] = Field(..., description="The systems whose script uses it: `windows`, `macos`.")


class AvailabilityOut(Schema):
    allowed: bool = Field(..., description="A run of it on the device would be accepted now.")
    refusal: str | None = Field(..., description="Otherwise the problem type a run would get (cooldown, limit...).")
    retry_at: datetime | None = Field(..., description="When it will be allowed, where known.")
    detail: str = Field(..., description="Why not, in the employee's words.")


class ActionOut(Schema):
    slug: str = Field(..., description="The action's name in calls (`action` of a run).")
    name: str
    summary: str
    category: str | None
    confirmation_text: str = Field(..., description="When not empty: show it, and send `confirmed: true`.")
    cooldown_minutes: int | None
    daily_limit_per_user: int | None
    parameters: list[ParameterOut]
    availability: AvailabilityOut | None = Field(
        None, description="On the device named by `device` in the query; null when none is named."
    )
    platforms: list[str] = Field(..., description="The systems the action runs on: `windows`, `macos`.")
    needs_approval: bool = Field(
        ..., description="IT approves each run first: send a `reason`; the run waits as `waiting_approval`."
    )


class ActionList(Schema):
    actions: list[ActionOut]
    total: int
    page: int


class DeviceOut(Schema):
    uid: str
    name: str
    platform: str
    last_seen_at: datetime | None


class DeviceList(Schema):
    devices: list[DeviceOut]
    unreachable_servers: list[str] = Field(..., description="Nexthink servers that could not be asked just now.")


class RunIn(Schema):
    employee: str = Employee
    action: str = Field(
        ..., min_length=1, max_length=120, description="The action's slug.", examples=["flush-dns-cache"]
    )
    device: str | None = Field(
        None,
        pattern=DEVICE_UID_RE.pattern,
        description="The device's UID (32 hexadecimal characters, or a Collector UID); left out: the employee's only device (refused when they have several).",
    )
    params: dict[Annotated[str, Field(max_length=100)], Annotated[str, Field(max_length=PARAM_VALUE_MAX_LENGTH)]] = (
        Field(default_factory=dict, max_length=PARAMS_MAX, description="Parameter values by name, all strings.")
    )
    confirmed: bool = Field(False, description="The employee confirmed the action's confirmation text.")
    reason: str = Field(
        "", max_length=300, description="Why the employee needs it: required when the action needs approval."
    )


class EngineResultOut(Schema):
    server: str = Field(..., description="The Nexthink server's name (or database UID).")
    explanation: str = Field(..., description="What its answer means, in plain words.")
    code: str = Field(..., description="Technical details: the code Nexthink answered.")


class TicketOut(Schema):
    state: str | None = Field(..., description="requested, sending, created or failed; null: none asked for.")
    state_label: str
    number: str
    can_request: bool = Field(..., description="POST .../help would ask IT now.")


class RunOut(Schema):
    id: str
    status: str = Field(..., description="The status as a code (stable).")
    status_label: str
    title: str
    summary: str = Field(..., description="The status in plain words, as the run's page says it.")
    final: bool
    reached_device: bool
    action: str | None = Field(..., description="The action's slug (null: since removed).")
    action_name: str
    device_uid: str
    device_name: str
    created_at: datetime
    sending_at: datetime | None
    finished_at: datetime | None
    engine_results: list[EngineResultOut]
    device_status_text: str
    outputs: dict[str, Any]
    fixed: bool | None = Field(..., description="The employee's answer to “did this fix it?”.")
    feedback_open: bool
    ticket: TicketOut
    url: str = Field(..., description="The run's page in the portal.")


class RunList(Schema):
    runs: list[RunOut]
    older: str = Field(..., description="Pass as `before` for the next page back in time; empty: no more.")


class FeedbackIn(Schema):
    employee: str = Employee
    fixed: bool
    comment: str = Field("", max_length=COMMENT_MAX_LENGTH, pattern=PLAIN_TEXT)


class HelpIn(Schema):
    employee: str = Employee
