"""Submitting a run: the rules checked before anything is stored, then a queued run handed to the broker."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import Now
from django.utils import timezone

from actions.catalog.parameters import validate_params
from actions.models import Device, RemoteAction, Run
from actions.runs import states
from actions.runs.dispatch import run_enqueue
from actions.runs.wording import when_text

log = logging.getLogger("actions.runs")


class RunRefused(Exception):
    """A run the rules do not allow now (cooldown, daily limit, Engine); the message is for the employee."""


class IdempotencyConflict(RunRefused):
    """A form's one-time key came back with another action, device or parameters."""


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
) -> Run:
    """Store a queued run with a snapshot of what will be sent, and enqueue it once committed.

    A repeated idempotency key returns the run it first made, if it asked for the same thing.
    After commit, `run.enqueued` says whether the broker took the task (False: the reaper sends it).
    """
    params = validate_params(action, params)
    engines = target_engines(action, device)
    with transaction.atomic():
        # One submit at a time per employee: the idempotency lookup, the cooldown and the daily
        # limit below are then read and written without a race. (A run's user owns its device.)
        get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk").first()
        if idempotency_key:
            existing = Run.objects.filter(user=user, idempotency_key=idempotency_key).first()
            if existing:
                if (existing.action_id, existing.device_id, existing.params) != (action.pk, device.pk, params):
                    raise IdempotencyConflict(
                        "This form was already sent once with other details, so nothing new was run. "
                        "Check the details below and submit again to run it with them."
                    )
                existing.enqueued = True
                return existing
        limits = run_limits(user=user, action=action, device=device)
        if not limits.allowed:
            raise RunRefused(limits.message)
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
            enqueued_at=Now(),
        )
        run.enqueued = None
        log.info(
            "run %s queued action=%s device=%s user=%s by=%s",
            run.pk,
            action.nexthink_uid,
            device.uid,
            user.get_username(),
            requested_by.get_username() if requested_by else "-",
        )
        transaction.on_commit(lambda: _enqueue_after_commit(run))
    return run


def _enqueue_after_commit(run: Run) -> None:
    run.enqueued = run_enqueue(run_id=run.pk, stamp=False)  # refused: enqueued_at cleared, the reaper sends it


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
            f"“{action.name}” is not available for {device.name}: IT has not enabled it for the Nexthink server "
            "your device reports to."
        )
    return [own]


@dataclass(frozen=True)
class Limits:
    allowed: bool
    again_at: datetime | None = None  # when it will be allowed, if not now
    message: str = ""


def run_limits(*, user, action: RemoteAction, device: Device, now: datetime | None = None) -> Limits:
    """May the user run this action on this device now? If not, when, and the words that say so.

    Runs the lifecycle counts (everything but failed runs, so also unknown and in-flight ones) start
    the cooldown and use up the daily limit.
    """
    now = now or timezone.now()
    fair = fair_use(user=user, now=now)
    if not fair.allowed:
        return fair
    counted = Run.objects.filter(status__in=states.COUNTED)
    if action.cooldown_minutes:
        cooldown = timedelta(minutes=action.cooldown_minutes)
        last = (
            counted.filter(action=action, device=device, created_at__gt=now - cooldown)
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if last:
            again = last + cooldown
            return Limits(
                False,
                again,
                f"“{action.name}” ran on {device.name} recently. You can run it again from {when_text(again)}.",
            )
    if action.daily_limit_per_user:
        local_now = timezone.localtime(now)
        day_start = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
        used = counted.filter(action=action, user=user, created_at__gte=day_start).count()
        if used >= action.daily_limit_per_user:
            tomorrow = timezone.make_aware(
                datetime.combine(day_start.date() + timedelta(days=1), datetime.min.time()), local_now.tzinfo
            )
            return Limits(
                False,
                tomorrow,
                f"You have run “{action.name}” {used} times today, the daily limit. "
                f"You can run it again from {when_text(tomorrow)}.",
            )
    return Limits(True)


def fair_use(*, user, now: datetime) -> Limits:
    """The portal's own limits for every employee and action, so that one employee's burst cannot
    hold up everyone else's runs: at most RUN_MAX_IN_FLIGHT_PER_USER runs waiting or being sent at
    once, and at most RUN_RATE_LIMIT_COUNT runs started per RUN_RATE_LIMIT_WINDOW_SECONDS."""
    window = timedelta(seconds=settings.RUN_RATE_LIMIT_WINDOW_SECONDS)
    since = now - window
    # One read for both limits, counted by the database (no rows fetched, however high the limits).
    counts = Run.objects.filter(Q(status__in=states.IN_FLIGHT) | Q(created_at__gt=since), user=user).aggregate(
        in_flight=Count("pk", filter=Q(status__in=states.IN_FLIGHT)),
        recent=Count("pk", filter=Q(created_at__gt=since)),
    )
    if counts["in_flight"] >= settings.RUN_MAX_IN_FLIGHT_PER_USER:
        return Limits(
            False,
            None,
            f"You already have {counts['in_flight']} runs waiting or being sent. "
            "You can start another as soon as one of them has finished (see My runs).",
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
            f"You have started {counts['recent']} runs in the last {round(window.total_seconds() / 60)} minutes, "
            f"the most the portal allows. You can start another from {when_text(again)}.",
        )
    return Limits(True)
