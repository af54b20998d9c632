"""What an employee should know before filling in an action's form: whether, and from when, they may
run it on their devices (cooldown, daily limit, fair use), and which device has been away long."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext, ngettext

from actions.models import Device, RemoteAction, Run
from actions.nexthink import platform
from actions.platforms import fits
from actions.runs import states
from actions.runs.submit import (
    Limits,
    cooldown_limit,
    cooldown_of,
    daily_limit,
    day_start,
    fair_use,
    run_limits,
)
from actions.sql import constants

# A device not seen for longer may well be off: the page says what happens then, before the form.
AWAY_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class Outlook:
    blocked: list[str] = field(default_factory=list)  # why not now, and from when: one line per reason
    all_blocked: bool = False  # on none of the devices now
    away: list[str] = field(default_factory=list)  # devices not seen for a long time, and what happens


def run_outlook(*, user, action: RemoteAction, devices: Sequence[Device], now: datetime | None = None) -> Outlook:
    now = now or timezone.now()
    blocked: list[str] = []
    free = 0
    fair: Limits | None = None
    for device in devices:
        if device.pk is None:  # known to Nexthink but not stored yet: nothing ran on it from here
            free += 1
            continue
        fair = fair or fair_use(user=user, now=now)  # the employee's, whatever the device: read once
        limits = run_limits(user=user, action=action, device=device, now=now, fair=fair)
        if limits.allowed:
            free += 1
        elif limits.message not in blocked:
            blocked.append(limits.message)
    away = [
        away_text(device.name, device.last_seen_at, now)
        for device in devices
        if device.last_seen_at and now - device.last_seen_at > AWAY_AFTER
    ]
    return Outlook(blocked=blocked, all_blocked=bool(devices) and free == 0, away=away)


def catalog_outlook(
    *, user, action_ids: Collection[int], limited: Sequence[RemoteAction], now: datetime | None = None
) -> dict[int, list[str]]:
    """The catalog's cards of actions the employee cannot run now on any of their devices: for each,
    why and from when, in run_limits' words (the action page's). `action_ids`: the cards' actions;
    `limited`: those with a cooldown or a daily limit (catalog.selectors.limited_actions: name,
    limits and systems). Read for the whole page at once, whatever the number of cards: fair use,
    and only if some action has a limit, the employee's devices and the runs that count against
    those limits: one query each.

    The devices are those the portal knows for the employee (the action page may also find devices
    Nexthink knows and the portal does not: those never ran anything from here, so they are free).
    """
    now = now or timezone.now()
    if not action_ids:
        return {}
    fair = fair_use(user=user, now=now)
    if not fair.allowed:
        return {pk: [fair.message] for pk in action_ids}
    if not limited:
        return {}
    devices = list(Device.objects.filter(owner=user).only("name", "platform").order_by())
    start = day_start(now)
    longest = max(cooldown_of(action) for action in limited)
    # The runs that count (run_limits' rule): on the employee's devices within the longest cooldown,
    # and the employee's own since the day began.
    recent = Q(user=user, created_at__gte=start)
    if devices and longest:
        recent |= Q(device__in=[device.pk for device in devices], created_at__gt=now - longest)
    runs = Run.objects.filter(recent, status__in=constants(states.COUNTED), action__in=[a.pk for a in limited])
    last: dict[tuple[int, int], datetime] = {}  # (action, device): its newest counted run
    used: dict[int, int] = {}  # action: the employee's counted runs today
    for action_id, device_id, user_id, created_at in runs.values_list("action", "device", "user", "created_at"):
        newest = last.get((action_id, device_id))
        if device_id is not None and (newest is None or created_at > newest):
            last[action_id, device_id] = created_at
        if user_id == user.pk and created_at >= start:
            used[action_id] = used.get(action_id, 0) + 1
    blocked: dict[int, list[str]] = {}
    for action in limited:
        reasons: list[str] = []
        fitting: list[Device | None] = [device for device in devices if fits(action, device.platform)]
        for device in fitting or [None]:
            limits = outlook_limits(action, device, last, used.get(action.pk, 0), start, now)
            if limits.allowed:
                break
            if limits.message not in reasons:
                reasons.append(limits.message)
        else:
            blocked[action.pk] = reasons
    return blocked


def outlook_limits(
    action: RemoteAction, device: Device | None, last: dict, used: int, start: datetime, now: datetime
) -> Limits:
    """run_limits' answer (fair use aside) from what catalog_outlook read: the cooldown on this device,
    then the daily limit. No device known: the daily limit only."""
    if action.cooldown_minutes and device is not None:
        ran = last.get((action.pk, device.pk))
        if ran is not None and ran > now - cooldown_of(action):
            return cooldown_limit(action, device, ran)
    if action.daily_limit_per_user and used >= action.daily_limit_per_user:
        return daily_limit(action, used, start)
    return Limits(True)


def away_text(name: str, last_seen: datetime, now: datetime) -> str:
    seen = gettext("%(device)s was last seen %(since)s ago.") % {"device": name, "since": timesince(last_seen, now)}
    if platform.current().follows_up:
        hours = max(1, settings.NEXTHINK_EXPIRES_MINUTES // 60)
        within = ngettext(
            "If it is off, the action runs when it is next online, within %(hours)d hour, or expires.",
            "If it is off, the action runs when it is next online, within %(hours)d hours, or expires.",
            hours,
        ) % {"hours": hours}
        return f"{seen} {within}"
    return f"{seen} " + gettext(
        "Switch it on and connect it to the network first: Nexthink reaches only a device that is online."
    )
