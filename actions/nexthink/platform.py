"""The one seam that hides which Nexthink a company runs: classic (Act API v2) or Infinity.

The run flow asks the platform to send a run, and, where the platform reports the device's own
result, to look it up later. Nothing else in the portal branches on NEXTHINK_PLATFORM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings

from .classic.client import EngineAnswer, shared_client
from .errors import ActInputError

EXTERNAL_SOURCE = "Fix my device"
# What a catalog entry runs (RemoteAction.Kind's values: this layer knows no model).
REMOTE_ACTION, WORKFLOW = "remote_action", "workflow"


@dataclass(frozen=True)
class Send:
    """What to send, as plain values: the run dispatch builds it from the run (this layer knows no model)."""

    reference: str  # the run's id: classic's requestUid, Infinity's externalReference
    action_uid: str
    action_nql_id: str
    device_uid: str
    engine_uids: tuple[str, ...]
    timeout_seconds: int
    params: dict[str, str]
    reason: str  # who asked, for Nexthink's audit (Infinity's triggerInfo)
    kind: str = REMOTE_ACTION  # WORKFLOW: Infinity's workflow execute API, the action's NQL id as workflowId
    user_upn: str = ""  # the employee, for a workflow (its steps may ask them): their principal name


@dataclass(frozen=True)
class Sent:
    """What Nexthink said to a send: classic, each Engine's answer; Infinity, a request to follow up."""

    answers: tuple[EngineAnswer, ...] = ()
    request_id: str = ""
    expires_in_minutes: int = 0


@dataclass(frozen=True)
class DeviceResult:
    """The execution of a run on its device, as far as Nexthink knows it now."""

    status: str  # one of DEVICE_STATUSES
    raw_status: str = ""  # exactly what Nexthink said
    details: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


class NotOurs(Exception):
    """Right before the call, the run was no longer this attempt's to send (the reaper decided it
    meanwhile): nothing was sent."""


def _checked(still_ours: Callable[[], bool]) -> Callable[[], None]:
    def before_send() -> None:
        if not still_ours():
            raise NotOurs

    return before_send


# What the portal makes of an execution's status; anything else counts as still in progress.
WAITING, IN_PROGRESS, SUCCESS, FAILURE, EXPIRED = "waiting", "in_progress", "success", "failure", "expired"
DEVICE_STATUSES = (WAITING, IN_PROGRESS, SUCCESS, FAILURE, EXPIRED)


class Platform(Protocol):
    name: str
    follows_up: bool  # True: the run is "following" after send, until the device's result is known

    def send(self, what: Send, *, still_ours: Callable[[], bool]) -> Sent:
        """Send it. `still_ours` is asked right before each call that could run the action (after a
        token is in hand): False raises NotOurs and nothing is sent."""
        ...

    def max_send_seconds(self, timeout_seconds: int) -> float:
        """The longest `send` can take, whatever Nexthink does: the reaper's "worker lost" deadline."""
        ...

    def device_result(self, request_id: str, device_uid: str, kind: str = REMOTE_ACTION) -> DeviceResult | None: ...


class ClassicPlatform:
    name = "classic"
    follows_up = False

    def send(self, what: Send, *, still_ours: Callable[[], bool]) -> Sent:
        if what.kind != REMOTE_ACTION:
            raise ActInputError("Workflows run on Nexthink Infinity only: nothing was sent.")
        _checked(still_ours)()
        answers = shared_client().run(
            remote_action_uid=what.action_uid,
            device_uids=[what.device_uid],
            engine_uids=list(what.engine_uids) or None,
            timeout_seconds=what.timeout_seconds,
            params=what.params or None,
            request_uid=what.reference,
        )
        return Sent(answers=tuple(answers))

    def max_send_seconds(self, timeout_seconds: int) -> float:
        # One call, answered within the run's timeout plus the read margin (client.py's Deadline).
        return settings.NEXTHINK_CONNECT_TIMEOUT_SECONDS + timeout_seconds + settings.NEXTHINK_READ_MARGIN_SECONDS

    def device_result(self, request_id: str, device_uid: str, kind: str = REMOTE_ACTION) -> DeviceResult | None:
        return None  # the Act API v2 never says what happened on the device


class InfinityPlatform:
    name = "infinity"
    follows_up = True

    def send(self, what: Send, *, still_ours: Callable[[], bool]) -> Sent:
        from .infinity.client import TriggerInfo, infinity_client_from_settings

        if what.kind == WORKFLOW:
            # Nexthink documents no expiry for a workflow request: it is followed as long as an action's.
            accepted = infinity_client_from_settings().execute_workflow(
                workflow_id=what.action_nql_id,
                device=what.device_uid,
                user_upn=what.user_upn,
                params=what.params or {},
                follow_minutes=settings.NEXTHINK_EXPIRES_MINUTES,
                before_send=_checked(still_ours),
            )
            return Sent(request_id=accepted.request_id, expires_in_minutes=accepted.expires_in_minutes)
        accepted = infinity_client_from_settings().execute(
            remote_action_id=what.action_nql_id,
            devices=[what.device_uid],
            params=what.params or {},
            expires_in_minutes=settings.NEXTHINK_EXPIRES_MINUTES,
            trigger_info=TriggerInfo(
                external_source=EXTERNAL_SOURCE, reason=what.reason, external_reference=what.reference
            ),
            before_send=_checked(still_ours),  # the token may have taken long: still ours?
        )
        return Sent(request_id=accepted.request_id, expires_in_minutes=accepted.expires_in_minutes)

    def max_send_seconds(self, timeout_seconds: int) -> float:
        # The token and execute calls, each at most twice; the run's own timeout is Nexthink's business.
        from .infinity.client import max_execute_seconds

        return max_execute_seconds(settings.NEXTHINK_CONNECT_TIMEOUT_SECONDS, settings.NEXTHINK_API_TIMEOUT_SECONDS)

    def device_result(self, request_id: str, device_uid: str, kind: str = REMOTE_ACTION) -> DeviceResult | None:
        from .infinity.client import infinity_client_from_settings

        client = infinity_client_from_settings()
        if kind == WORKFLOW:
            executions = client.workflow_executions(request_id, device_uid)
        else:
            executions = client.executions(request_id, device_uid)
        if not executions:
            return None  # Nexthink has not recorded the request yet
        latest = executions[-1]
        return DeviceResult(
            status=EXECUTION_STATUS.get(str(latest.status), IN_PROGRESS),
            raw_status=latest.raw_status,
            details=latest.status_details,
            outputs=dict(latest.outputs),
        )


# The Infinity client's execution statuses, as the run lifecycle reads them. A cancelled execution
# did not do its job on the device; a status nobody knows is still in progress until expiry.
EXECUTION_STATUS = {
    "waiting": WAITING,
    "in_progress": IN_PROGRESS,
    "success": SUCCESS,
    "failure": FAILURE,
    "expired": EXPIRED,
    "cancelled": FAILURE,
}


def current() -> Platform:
    return InfinityPlatform() if settings.NEXTHINK_PLATFORM == "infinity" else ClassicPlatform()
