"""A run's statuses and the moves allowed between them: the table, and what each set of statuses means.

Pure data and checks; the writers that apply a move are in lifecycle.py, what happened is turned
into an outcome in outcomes.py.

    queued ──claim──▶ sending ──answer──▶ sent | partial | failed | unknown
    retrying ─claim─┘    ├──retryable error──▶ retrying (at next_attempt_at)
                         └──accepted, the platform reports the device's result──▶ following
    following ──follow-up──▶ done | device_failed | expired | unknown
    following ──past Nexthink's expiry + grace, result unreadable (follow-up or reaper)──▶ unknown
    queued, retrying ──reaper: not sent in time──▶ failed
    sending ──reaper: worker lost──▶ unknown
    waiting_approval ──approved──▶ queued;  ──denied──▶ denied;  ──reaper: past approval_expires_at──▶ approval_expired
    waiting_approval ──the employee cancels──▶ cancelled;  ──approved, but no longer allowed──▶ failed
"""

from __future__ import annotations

from collections.abc import Collection

from actions.models import Run

Status = Run.Status

TRANSITIONS: dict[str, frozenset[str]] = {
    Status.QUEUED: frozenset({Status.SENDING, Status.FAILED}),
    Status.RETRYING: frozenset({Status.SENDING, Status.FAILED}),
    Status.SENDING: frozenset(
        {Status.RETRYING, Status.SENT, Status.PARTIAL, Status.FAILED, Status.UNKNOWN, Status.FOLLOWING}
    ),
    Status.FOLLOWING: frozenset({Status.DONE, Status.DEVICE_FAILED, Status.EXPIRED, Status.UNKNOWN}),
    Status.WAITING_APPROVAL: frozenset(
        {Status.QUEUED, Status.DENIED, Status.APPROVAL_EXPIRED, Status.CANCELLED, Status.FAILED}
    ),
    Status.DENIED: frozenset(),
    Status.APPROVAL_EXPIRED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.SENT: frozenset(),
    Status.PARTIAL: frozenset(),
    Status.FAILED: frozenset(),
    Status.UNKNOWN: frozenset(),
    Status.DONE: frozenset(),
    Status.DEVICE_FAILED: frozenset(),
    Status.EXPIRED: frozenset(),
}
FINAL = frozenset(status for status, targets in TRANSITIONS.items() if not targets)
# Waiting or being sent: counted towards the employee's in-flight cap (a request waiting for approval too).
IN_FLIGHT = frozenset({Status.WAITING_APPROVAL, Status.QUEUED, Status.SENDING, Status.RETRYING})
# Final runs whose employee is offered help from IT (with an answer "No" to "Did this fix it?", any
# final run): nothing was sent, nobody can tell what happened, or it failed or never ran on the device.
NEEDS_HELP = frozenset({Status.FAILED, Status.UNKNOWN, Status.DEVICE_FAILED, Status.EXPIRED})
# Nexthink accepted the action for the device (on at least one Engine), or the device did it: the
# employee is asked whether it fixed their problem.
REACHED_DEVICE = frozenset({Status.SENT, Status.PARTIAL, Status.DONE})
# Counted towards the cooldown and the daily limit: whatever may reach or may have reached the
# device. Only a run that was not sent, or that expired before the device took it, surely did not run;
# nor did a request that was not approved (denied, not in time, cancelled).
NOT_APPROVED = frozenset({Status.DENIED, Status.APPROVAL_EXPIRED, Status.CANCELLED})
COUNTED = frozenset(TRANSITIONS) - {Status.FAILED, Status.EXPIRED} - NOT_APPROVED

UNSENT = (Status.QUEUED, Status.RETRYING)

# Where a run can end depends on the platform: classic's Engines answer at once (sent, partial);
# Infinity's runs are followed up on the device (following, then done, device_failed, expired).
CLASSIC_ONLY = frozenset({Status.SENT, Status.PARTIAL})
FOLLOW_UP_ONLY = frozenset({Status.FOLLOWING, Status.DONE, Status.DEVICE_FAILED, Status.EXPIRED})
# Nexthink took the run for the device: the request surely went out (what happened next is another matter).
WENT_OUT = CLASSIC_ONLY | FOLLOW_UP_ONLY


def platform_statuses(*, follows_up: bool) -> list[str]:
    """The statuses a run can have on a platform, in TRANSITIONS' order."""
    other = CLASSIC_ONLY if follows_up else FOLLOW_UP_ONLY
    return [status for status in TRANSITIONS if status not in other]


def is_final(status: str) -> bool:
    return status in FINAL


def check_move(leaving: Collection[str], to: str) -> None:
    """Refuse, as a programming error, a move whose sources are not named or not allowed by TRANSITIONS."""
    if to not in TRANSITIONS:
        raise ValueError(f"unknown status {to!r}")
    if isinstance(leaving, str) or not leaving:
        raise ValueError(f"a move to {to!r} must name the statuses it leaves")
    wrong = sorted(str(status) for status in leaving if to not in TRANSITIONS.get(status, ()))
    if wrong:
        raise ValueError(f"no move from {', '.join(wrong)} to {to!r}")
