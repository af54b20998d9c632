"""The one seam that hides which Nexthink a company runs: classic (Act API v2) or Infinity.

The run flow asks the platform to send a run, and, where the platform reports the device's own
result, to look it up later. Nothing else in the portal branches on NEXTHINK_PLATFORM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from django.conf import settings

from .client import EngineAnswer, client_from_settings

if TYPE_CHECKING:
    from actions.models import Run

EXTERNAL_SOURCE = "Fix my device"


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


# What the portal makes of an execution's status; anything else counts as still in progress.
WAITING, IN_PROGRESS, SUCCESS, FAILURE, EXPIRED = "waiting", "in_progress", "success", "failure", "expired"
DEVICE_STATUSES = (WAITING, IN_PROGRESS, SUCCESS, FAILURE, EXPIRED)


class Platform(Protocol):
    name: str
    follows_up: bool  # True: the run is "following" after send, until the device's result is known

    def send(self, run: Run) -> Sent: ...

    def device_result(self, run: Run) -> DeviceResult | None: ...


class ClassicPlatform:
    name = "classic"
    follows_up = False

    def send(self, run: Run) -> Sent:
        answers = client_from_settings().run(
            remote_action_uid=str(run.action_uid),
            device_uids=[run.device_uid],
            engine_uids=run.engine_uids or None,
            timeout_seconds=run.timeout_seconds,
            params=run.params or None,
            request_uid=str(run.pk),
        )
        return Sent(answers=tuple(answers))

    def device_result(self, run: Run) -> DeviceResult | None:
        return None  # the Act API v2 never says what happened on the device


class InfinityPlatform:
    name = "infinity"
    follows_up = True

    def send(self, run: Run) -> Sent:
        from .infinity import client_from_settings as infinity_client

        accepted = infinity_client().execute(
            remote_action_id=run.action_nql_id,
            devices=[run.device_uid],
            params=run.params or {},
            expires_in_minutes=settings.NEXTHINK_EXPIRES_MINUTES,
            trigger_info=trigger_info(run),
        )
        return Sent(request_id=accepted.request_id, expires_in_minutes=accepted.expires_in_minutes)

    def device_result(self, run: Run) -> DeviceResult | None:
        from .infinity import client_from_settings as infinity_client

        executions = infinity_client().executions(request_id=run.request_id, device=run.device_uid)
        if not executions:
            return None
        latest = executions[-1]
        return DeviceResult(
            status=latest.status if latest.status in DEVICE_STATUSES else IN_PROGRESS,
            raw_status=latest.raw_status,
            details=latest.status_details,
            outputs=dict(latest.outputs),
        )


def trigger_info(run: Run) -> dict[str, str]:
    """Who asked, for Nexthink's audit: the employee, and the IT staff member who ran it for them."""
    employee = run.user.get_full_name() or run.user.get_username()
    reason = f"Requested by {employee} ({run.user.get_username()}) in the self-service portal"
    if run.requested_by_id and run.requested_by_id != run.user_id:
        reason += f", run for them by IT staff {run.requested_by.get_username()}"
    return {"externalSource": EXTERNAL_SOURCE, "reason": reason[:500], "externalReference": str(run.pk)}


def current() -> Platform:
    return InfinityPlatform() if settings.NEXTHINK_PLATFORM == "infinity" else ClassicPlatform()
