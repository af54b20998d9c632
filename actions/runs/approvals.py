"""Approvals: a run of an action that needs a second pair of eyes waits until an approver decides.

Who may decide: an active member of the run's approver group (the action's, when it was asked for),
never the employee who asked. Every decision is one conditional move out of "waiting for approval"
(lifecycle.py): of two approvers at once, one decides and the other is told. Approving re-checks
what submit checked, as it stands now; if anything changed, the run ends without sending and the
approver is told why. Dispatch re-checks again at send time, as for every run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import Now, RowNumber
from django.utils.translation import gettext, gettext_noop

from actions.audit import audit_event
from actions.catalog.parameters import InvalidParams
from actions.models import Run
from actions.runs import lifecycle
from actions.runs.dispatch import run_enqueue, still_allowed
from actions.runs.submit import RunRefused, checked_request, run_limits
from actions.runs.wording import chosen_values, translated_message
from actions.sql import Constant

log = logging.getLogger("actions.runs")
Status = Run.Status
COMMENT_MAX_LENGTH = 1000
BATCH = 500


class ApprovalRefused(Exception):
    """The decision was not taken (not allowed, or already taken); the message is for the approver."""


def approvals_waiting_for(user) -> QuerySet[Run]:
    """The requests this user may decide now: of the groups they approve for, not their own, oldest first."""
    return (
        Run.objects.filter(status=Status.WAITING_APPROVAL, approver_group__in=user.groups.all())
        .exclude(user=user)
        .select_related("user", "device", "action")
        .prefetch_related("action__parameters")
        .order_by("approval_expires_at", "created_at")
    )


def is_approver(user) -> bool:
    """Whether the user is in a group some action names as its approvers (one query)."""
    return user.groups.filter(approvable_actions__isnull=False).exists()


def check_approver(run: Run, user) -> None:
    """Raise ApprovalRefused unless `user` may decide on `run`."""
    if not user.is_active or run.approver_group_id is None:
        raise ApprovalRefused(gettext("You may not decide on this request."))
    if run.user_id == user.pk:
        raise ApprovalRefused(gettext("You cannot approve or deny your own request: another approver decides."))
    if not user.groups.filter(pk=run.approver_group_id).exists():
        raise ApprovalRefused(gettext("You may not decide on this request: you are not one of its approvers."))


def approval_problems(run: Run) -> list[str]:
    """What no longer holds of what submit checked: the action, the device, the parameters, the limits."""
    refusal = still_allowed(run)
    if refusal:
        return [refusal[1]]
    assert run.action is not None and run.device is not None  # still_allowed checked both
    try:
        checked_request(action=run.action, device=run.device, params=dict(run.params or {}))
    except (InvalidParams, RunRefused) as exc:
        return [str(exc)]
    limits = run_limits(user=run.user, action=run.action, device=run.device, deciding=run)
    return [] if limits.allowed else [limits.message]


def run_approve(*, run_id, approver, comment: str = "") -> Run:
    """Approve: the run is queued and handed to the broker once committed. Raises ApprovalRefused when
    the approver may not, another decided first, or what submit checked no longer holds (then the run
    ends, not sent, and the message says why)."""
    comment = comment.strip()[:COMMENT_MAX_LENGTH]
    run = _waiting(run_id, approver)
    problems = approval_problems(run)
    if problems:
        why = " ".join(problems)
        with transaction.atomic():
            ended = lifecycle.end_waiting(
                run.pk,
                Status.FAILED,
                by=approver,
                comment=comment,
                code="NO_LONGER_ALLOWED",
                message=gettext_noop("Approved, but it can no longer run as asked, so nothing was sent.") + f" {why}",
            )
            if ended:
                _record(run, "approval_no_longer_allowed", approver, Status.FAILED, comment)
        if not ended:
            raise _decided_first(run.pk)
        raise ApprovalRefused(
            gettext("This request can no longer run as asked, so it ended without running: %(why)s")
            % {"why": translated_message(why)}
        )
    with transaction.atomic():
        approved = lifecycle.approve(run.pk, by=approver, comment=comment)
        if approved:
            _record(run, "approval_granted", approver, Status.QUEUED, comment)
            transaction.on_commit(lambda: run_enqueue(run_id=run.pk, stamp=False))
    if not approved:
        raise _decided_first(run.pk)
    run.refresh_from_db()
    return run


def run_deny(*, run_id, approver, comment: str = "") -> Run:
    """Deny: the run ends, never sent; the employee reads who decided and the comment."""
    comment = comment.strip()[:COMMENT_MAX_LENGTH]
    run = _waiting(run_id, approver)
    with transaction.atomic():
        denied = lifecycle.end_waiting(run.pk, Status.DENIED, by=approver, comment=comment)
        if denied:
            _record(run, "approval_denied", approver, Status.DENIED, comment)
    if not denied:
        raise _decided_first(run.pk)
    run.refresh_from_db()
    return run


def run_cancel(*, run_id, user) -> bool:
    """The employee withdraws their request while it waits. False: it was decided meanwhile."""
    return lifecycle.end_waiting(
        run_id,
        Status.CANCELLED,
        where=Q(user=user),
        message=gettext_noop("You cancelled this request, so nothing was sent."),
    )


def approvals_expire() -> int:
    """Requests nobody decided on in time end, never sent (the reaper's pass)."""
    # The status as a literal: PostgreSQL's generic plan then reads the partial index of waiting requests.
    due = Run.objects.filter(status=Constant(Status.WAITING_APPROVAL), approval_expires_at__lt=Now())
    pks = list(due.values_list("pk", flat=True)[:BATCH])
    message = gettext_noop("Nobody approved this request in time, so nothing was sent.")
    still_due = Q(approval_expires_at__lt=Now())  # at the moment of the move too
    return sum(lifecycle.end_waiting(pk, Status.APPROVAL_EXPIRED, message=message, where=still_due) for pk in pks)


def _waiting(run_id, approver) -> Run:
    run = Run.objects.select_related("action", "device", "user", "requested_by").filter(pk=run_id).first()
    if run is None:
        raise ApprovalRefused(gettext("There is no such request."))
    check_approver(run, approver)
    if run.status != Status.WAITING_APPROVAL:
        raise _decided_first(run.pk)
    return run


def _decided_first(run_id) -> ApprovalRefused:
    run = Run.objects.select_related("decided_by").get(pk=run_id)
    if run.status == Status.CANCELLED:
        return ApprovalRefused(gettext("The employee cancelled this request meanwhile: nothing to decide."))
    if run.status == Status.APPROVAL_EXPIRED:
        return ApprovalRefused(gettext("This request expired before a decision: nothing to decide."))
    decision = run.get_status_display().lower()
    if run.decided_by is None:
        return ApprovalRefused(gettext("Already decided by the portal: %(decision)s.") % {"decision": decision})
    by = run.decided_by.get_username()
    return ApprovalRefused(gettext("Already decided by %(by)s: %(decision)s.") % {"by": by, "decision": decision})


def _record(run: Run, event: str, approver, to: str, comment: str) -> None:
    audit_event(
        event,
        target=run,
        actor=approver,
        changes={"status": (Status.WAITING_APPROVAL.label, Status(to).label)},
        details={"employee": run.user.get_username(), "action": run.action_name, "comment": comment},
    )


@dataclass(frozen=True)
class ApprovalDetails:
    """What an approver reads before deciding: who, the parameters by their labels, the device's recent runs."""

    run: Run
    employee: str
    parameters: list[tuple[str, str]]
    recent: list[Run]


RECENT_RUNS = 5


def approvals_page(user, *, limit: int) -> list[ApprovalDetails]:
    """The first `limit` requests the user may decide, each with what the approver reads: two queries
    for the requests and their parameters, one for every device's recent runs."""
    runs = list(approvals_waiting_for(user)[:limit])
    recent = recent_runs_by_device({run.device_uid for run in runs})
    return [approval_details(run, recent.get(run.device_uid, [])) for run in runs]


def recent_runs_by_device(device_uids: set[str]) -> dict[str, list[Run]]:
    """Each device's latest runs, newest first, one more than shown (a request's own run is left out)."""
    if not device_uids:
        return {}
    newest_first = Window(RowNumber(), partition_by=F("device_uid"), order_by=[F("created_at").desc(), F("pk")])
    rows = (
        Run.objects.filter(device_uid__in=device_uids)
        .annotate(newest=newest_first)
        .filter(newest__lte=RECENT_RUNS + 1)
        .order_by("device_uid", "newest")
    )
    by_device: dict[str, list[Run]] = {}
    for run in rows:
        by_device.setdefault(run.device_uid, []).append(run)
    return by_device


def approval_details(run: Run, device_runs: list[Run]) -> ApprovalDetails:
    recent = [other for other in device_runs if other.pk != run.pk][:RECENT_RUNS]
    person = run.user.get_full_name()
    employee = f"{person} ({run.user.get_username()})" if person else run.user.get_username()
    return ApprovalDetails(run=run, employee=employee, parameters=chosen_values(run), recent=recent)
