"""Which devices belong to an employee. (Stub: the device-resolution work replaces this.)"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.http import Http404

from actions.models import Device

security_log = logging.getLogger("actions.security")


@dataclass
class Resolution:
    devices: list[Device]
    unreachable_engines: list[str] = field(default_factory=list)


def resolve_devices_for(user) -> Resolution:
    """The user's own devices, most recently seen first."""
    devices = list(Device.objects.filter(owner=user).select_related("engine").order_by("-last_seen_at", "name"))
    return Resolution(devices=devices)


def device_for_user(user, uid: str, *, source_address: str = "") -> Device:
    """The device with this UID if it is the user's own; otherwise Http404 and a security event."""
    device = Device.objects.filter(uid=uid, owner=user).select_related("engine").first()
    if device is None:
        security_log.warning(
            "device_not_owned user=%s device=%s source=%s", user.get_username(), uid[:64], source_address or "-"
        )
        raise Http404("No such device.")
    return device
