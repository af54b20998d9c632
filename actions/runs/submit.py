"""Submitting a run: the rules checked before anything is stored, then a queued run handed to the broker."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from actions import metrics
from actions.audit import audit_event
from actions.catalog.parameters import validate_params
from actions.compiled import compiled_instances, compiled_rows, joined_columns
from actions.models import Device, RemoteAction, Run, max_length
from actions.platforms import fits, label, labels, runs_on
from actions.runs import states
from actions.runs.dispatch import run_enqueue
from actions.runs.notify import approvers_schedule
from actions.runs.wording import when_text
from actions.sql import Constant, constants

log = logging.getLogger("actions.runs")


class RunRefused(Exception):
    """A run the rules do not allow now (cooldown, daily limit, Engine); the message is for the employee.

    `kind` names the rule (Limits.kind, "engine", "idempotency"); `again_at`: when it will be allowed, if known.
    """

    kind = "refused"

    def __init__(self, message: str, *, kind: str = "", again_at: datetime | None = None):
        super().__init__(message)
        if kind:
            self.kind = kind
        self.again_at = again_at


class IdempotencyConflict(RunRefused):
    """A form's one-time key came back with another action, device or parameters."""

    kind = "idempotency"


def action_timeout(action: RemoteAction) -> int:
    return action.timeout_seconds or settings.NEXTHINK_DEFAULT_TIMEOUT_SECONDS


def run_submit(
    *,
    user,
    action: RemoteAction,
    device: Device,
    params: dict[str, str],
    idempotency_key: str = "",
    requested_by=None,
    retry_of: Run | None = None,
    reason: str = "",
) -> Run:
    """Store a queued run with a snapshot of what will be sent, and enqueue it once committed.

    A repeated idempotency key returns the run it first made, if it asked for the same thing.
    After commit, `run.enqueued` says whether the broker took the task (False: the reaper sends it).
    An employee's run of an action that needs approval (its approver group) waits for it, with the
    employee's `reason`, and is handed to the broker once approved (runs/approvals.py). IT's runs
    for an employee (`requested_by`: staff allowed to run anything on any device) do not wait.
    """
    params, engines = checked_request(action=action, device=device, params=params)
    reason = " ".join(reason.split())[: max_length(Run, "reason")]
    needs_approval = action.approver_group_id is not None and requested_by is None
    if needs_approval and not reason:
        raise RunRefused(
            gettext("IT approves this action before it runs: please say why you need it."), kind="approval_reason"
        )
    with transaction.atomic():
        # One submit at a time per employee: the idempotency lookup, the cooldown and the daily
        # limit below are then read and written without a race. (A run's user owns its device.)
        # Both reads are on every form POST: compiled once per process (actions/compiled.py).
        compiled_rows(_lock_user, user.pk)
        if idempotency_key:
            found = compiled_instances(Run, _run_with_key, user.pk, idempotency_key)
            existing = found[0] if found else None  # at most one: the key is unique per employee
            if existing:
                if (existing.action_id, existing.device_id, existing.params) != (action.pk, device.pk, params):
                    raise IdempotencyConflict(
                        gettext(
                            "This form was already sent once with other details, so nothing new was run. "
                            "Check the details below and submit again to run it with them."
                        )
                    )
                existing.enqueued = True
                return existing
        limits = run_limits(user=user, action=action, device=device)
        if not limits.allowed:
            raise RunRefused(limits.message, kind=limits.kind, again_at=limits.again_at)
        run = Run.objects.create(
            user=user,
            requested_by=requested_by,
            action=action,
            device=device,
            retry_of=retry_of,
            idempotency_key=idempotency_key,
            action_name=action.name,
            action_uid=action.nexthink_uid,
            action_nql_id=action.nql_id,
            action_kind=action.kind,
            device_uid=device.uid,
            device_name=device.name,
            timeout_seconds=action_timeout(action),
            engine_uids=engines,
            params=params,
            max_attempts=settings.RUN_MAX_ATTEMPTS,
            # Stamped now, in the same write; cleared if the broker refuses the task after commit.
            enqueued_at=None if needs_approval else Now(),
            **(approval_fields(action, reason) if needs_approval else {}),
        )
        run.enqueued = None
        if requested_by is not None:  # IT asked for it: a retry, or a run on this employee's device
            audit_event(
                "admin_retry" if retry_of is not None else "run_for_other",
                target=run,
                actor=requested_by,
                created=True,
                details={
                    "employee": user.get_username(),
                    "device": f"{device.name} ({device.uid})",
                    "action": action.name,
                    "parameters": json.dumps(params, sort_keys=True),
                    **({"retry of run": retry_of.pk} if retry_of is not None else {}),
                },
            )
        log.info(
            "run %s queued action=%s device=%s user=%s by=%s",
            run.pk,
            action.nexthink_uid,
            device.uid,
            user.get_username(),
            requested_by.get_username() if requested_by else "-",
        )
        if needs_approval:  # handed over once approved (runs/approvals.py); its approvers hear of it
            approvers_schedule(run.pk)
        else:
            transaction.on_commit(lambda: _enqueue_after_commit(run))
    return run


def _lock_user(user_id: int):
    """The employee's row, locked until the submit's transaction ends (FOR UPDATE where the database has it)."""
    return get_user_model().objects.select_for_update().filter(pk=user_id).values_list("pk")


def _run_with_key(user_id: int, idempotency_key: str):
    """The employee's run made with this one-time key. The key's condition written as the partial
    unique index's own (`<> ''`, a literal): a generic plan then reads that index, not the employee's
    whole history (actions/sql.py)."""
    return Run.objects.filter(
        ~Q(idempotency_key=Constant("")), user_id=user_id, idempotency_key=idempotency_key
    ).values_list(*joined_columns(Run))


def approval_fields(action: RemoteAction, reason: str) -> dict:
    """A run that waits for approval: by whom, until when, and why the employee asks."""
    return {
        "status": Run.Status.WAITING_APPROVAL,
        "approver_group_id": action.approver_group_id,
        "approval_expires_at": timezone.now() + timedelta(hours=action.approval_hours),
        "reason": reason,
    }


def _enqueue_after_commit(run: Run) -> None:
    metrics.run_submitted(action=run.action_name, platform=settings.NEXTHINK_PLATFORM)
    run.enqueued = run_enqueue(run_id=run.pk, stamp=False)  # refused: enqueued_at cleared, the reaper sends it


def checked_request(*, action: RemoteAction, device: Device, params: dict[str, str]) -> tuple[dict, list[str]]:
    """What submit checks of the request itself, and approval checks again under today's definition:
    the action runs on the device's system, the parameters that system uses are valid, and the device's
    Nexthink server may be used. Returns the parameters to store and the Engines to send to."""
    refuse_other_system(action, device)
    return validate_params(action, params, device.platform), target_engines(action, device)


def refuse_other_system(action: RemoteAction, device: Device) -> None:
    """An action whose script does not exist for the device's system (a Windows fix on a Mac) is refused."""
    if not fits(action, device.platform):
        raise RunRefused(wrong_system_message(action, device))


def wrong_system_message(action: RemoteAction, device: Device) -> str:
    return gettext(
        "“%(action)s” cannot run on %(device)s: IT has it for %(systems)s devices only, "
        "and %(device)s is a %(system)s device."
    ) % {
        "action": action.name,
        "device": device.name,
        "systems": labels(runs_on(action)),
        "system": label(device.platform),
    }


def target_engines(action: RemoteAction, device: Device) -> list[str]:
    """The device's own Engine when it is known, else the action's Engines (none: all).

    A device whose Engine the action does not allow is refused: sending it to other Engines would
    reach nothing, or the wrong place.
    """
    allowed = sorted(engine.database_uid for engine in action.engines.all())
    engine = device.engine  # no query when engine_id is None
    if engine is None:
        return allowed
    own = engine.database_uid
    if allowed and own not in allowed:
        raise RunRefused(
            gettext(
                "“%(action)s” is not available for %(device)s: IT has not enabled it for the Nexthink server "
                "your device reports to."
            )
            % {"action": action.name, "device": device.name},
            kind="engine",
        )
    return [own]


@dataclass(frozen=True)
class Limits:
    allowed: bool
    again_at: datetime | None = None  # when it will be allowed, if not now
    message: str = ""
    kind: str = ""  # which limit: "cooldown", "daily_limit", "in_flight" or "rate"


def run_limits(
    *,
    user,
    action: RemoteAction,
    device: Device,
    now: datetime | None = None,
    deciding: Run | None = None,
    fair: Limits | None = None,
) -> Limits:
    """May the user run this action on this device now? If not, when, and the words that say so.

    Runs the lifecycle counts (everything but failed runs, so also unknown and in-flight ones) start
    the cooldown and use up the daily limit. `deciding`: a run waiting for approval, checked again
    when an approver decides: the action's own limits, without that run itself (the portal's fair-use
    limits counted it when it was asked for). `fair`: fair_use's answer when the caller already has it
    (the same for every action of the user).
    """
    now = now or timezone.now()
    if deciding is None:
        fair = fair or fair_use(user=user, now=now)
        if not fair.allowed:
            return fair
    counted = Run.objects.filter(status__in=states.COUNTED)
    if deciding is not None:
        counted = counted.exclude(pk=deciding.pk)
    if action.cooldown_minutes:
        last = (
            counted.filter(action=action, device=device, created_at__gt=now - cooldown_of(action))
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if last:
            return cooldown_limit(action, device, last)
    if action.daily_limit_per_user:
        start = day_start(now)
        used = counted.filter(action=action, user=user, created_at__gte=start).count()
        if used >= action.daily_limit_per_user:
            return daily_limit(action, used, start)
    return Limits(True)


# The words and times of each limit, from what was read: run_limits reads it for one action and
# device, the catalog (runs/outlook.py) for all the actions of a page at once.
def cooldown_of(action: RemoteAction) -> timedelta:
    return timedelta(minutes=action.cooldown_minutes)


def cooldown_limit(action: RemoteAction, device: Device, last: datetime) -> Limits:
    """The action's cooldown, started on this device by a run counted at `last` (within the cooldown)."""
    again = last + cooldown_of(action)
    return Limits(
        False,
        again,
        gettext("“%(action)s” ran on %(device)s recently. You can run it again from %(when)s.")
        % {"action": action.name, "device": device.name, "when": when_text(again)},
        "cooldown",
    )


def day_start(now: datetime) -> datetime:
    """The start of the site's day (its time zone) that `now` is in: the daily limit counts from it."""
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def daily_limit(action: RemoteAction, used: int, start: datetime) -> Limits:
    """The daily limit, reached with `used` counted runs since `start` (day_start)."""
    tomorrow = timezone.make_aware(
        datetime.combine(start.date() + timedelta(days=1), datetime.min.time()), start.tzinfo
    )
    return Limits(
        False,
        tomorrow,
        ngettext(
            "You have run “%(action)s” %(used)d time today, the daily limit. You can run it again from %(when)s.",
            "You have run “%(action)s” %(used)d times today, the daily limit. You can run it again from %(when)s.",
            used,
        )
        % {"action": action.name, "used": used, "when": when_text(tomorrow)},
        "daily_limit",
    )


def run_availability(*, user, action: RemoteAction, device: Device, fair: Limits | None = None) -> Limits:
    """Would a submit of this action on this device be allowed now? The same checks as run_submit
    (the device's Nexthink server, then the limits), without storing anything. `fair`: as run_limits."""
    try:
        target_engines(action, device)
    except RunRefused as exc:
        return Limits(False, None, str(exc), exc.kind)
    return run_limits(user=user, action=action, device=device, fair=fair)


def _fair_use_counts(user_id: int, since: datetime, since_again: datetime):
    """The user's runs in flight and runs started after `since`, counted (one row, none without runs).

    The statuses as literals: PostgreSQL then knows in-flight runs are few (actions/sql.py). `since`
    twice, as the query takes it twice (compiled_rows binds each value once)."""
    in_flight = Q(status__in=constants(states.IN_FLIGHT))
    return (
        Run.objects.filter(in_flight | Q(created_at__gt=since), user_id=user_id)
        .values("user_id")
        .annotate(in_flight=Count("pk", filter=in_flight), recent=Count("pk", filter=Q(created_at__gt=since_again)))
        .values_list("in_flight", "recent")
    )


def fair_use(*, user, now: datetime) -> Limits:
    """The portal's own limits for every employee and action, so that one employee's burst cannot
    hold up everyone else's runs: at most RUN_MAX_IN_FLIGHT_PER_USER runs waiting or being sent at
    once, and at most RUN_RATE_LIMIT_COUNT runs started per RUN_RATE_LIMIT_WINDOW_SECONDS."""
    window = timedelta(seconds=settings.RUN_RATE_LIMIT_WINDOW_SECONDS)
    since = now - window
    # One read for both limits, counted by the database (no rows fetched, however high the limits),
    # compiled once per process (actions/compiled.py): the action page, the form POST and the final
    # poll's "Run again" each ask it. No row: the user has no run in flight and none recently.
    [(in_flight, recent)] = compiled_rows(_fair_use_counts, user.pk, since, since) or [(0, 0)]
    counts = {"in_flight": in_flight, "recent": recent}
    if counts["in_flight"] >= settings.RUN_MAX_IN_FLIGHT_PER_USER:
        return Limits(
            False,
            None,
            ngettext(
                "You already have %(count)d run waiting or being sent. "
                "You can start another as soon as it has finished (see My runs).",
                "You already have %(count)d runs waiting or being sent. "
                "You can start another as soon as one of them has finished (see My runs).",
                counts["in_flight"],
            )
            % {"count": counts["in_flight"]},
            "in_flight",
        )
    if counts["recent"] >= settings.RUN_RATE_LIMIT_COUNT:
        # Allowed again once the oldest of the last RUN_RATE_LIMIT_COUNT runs leaves the window.
        oldest_counted = (
            Run.objects.filter(user=user, created_at__gt=since)
            .order_by("-created_at")
            .values_list("created_at", flat=True)[settings.RUN_RATE_LIMIT_COUNT - 1]
        )
        again = oldest_counted + window
        return Limits(
            False,
            again,
            gettext(
                "You have started %(count)d runs in the last %(minutes)d minutes, the most the portal allows. "
                "You can start another from %(when)s."
            )
            % {"count": counts["recent"], "minutes": round(window.total_seconds() / 60), "when": when_text(again)},
            "rate",
        )
    return Limits(True)
