"""What an employee should know before filling in an action's form: whether, and from when, they may
run it on their devices (cooldown, daily limit, fair use), and which device has been away long."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext, ngettext

from actions.models import Device, RemoteAction
from actions.nexthink import platform
from actions.runs.submit import Limits, fair_use, run_limits

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
