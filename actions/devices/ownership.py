"""Ownership: nobody acts on a device that is not their own.

``device_for_user`` at submit time (full rules: resolver enabled, NXQL answer within the TTL, asking
again if it is older); at dispatch time the run's read re-checks the owner column only, no HTTP
(actions.runs.selectors.visible_and_owned). Both log a security event when the device is not the user's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404

from actions.devices.resolution import DIRECTORY_SOURCES, nql_resolve, nxql_fresh_after, nxql_resolve
from actions.models import Device
from actions.security import security_event
from actions.uids import DEVICE_UID_RE


def device_for_user(user, uid: str, *, source_address: str = "", known: Iterable[Device] = ()) -> Device:
    """The device with this UID if it is the user's own; otherwise Http404 and a security event.

    A UID that is not 32 hexadecimal characters is refused before any lookup. A device known from
    an NXQL answer older than the TTL is confirmed by asking the Engines again. `known`: the user's
    devices as this request already resolved them (the form's choices, same rules), read again
    only when the UID is not among them.
    """
    if not isinstance(uid, str) or not DEVICE_UID_RE.fullmatch(uid):
        security_event("device_uid_invalid", user=user, device=uid, source_address=source_address)
        raise Http404("No such device.")
    uid = uid.lower()
    device = next((d for d in known if d.uid == uid and d.owner_id == user.pk), None)
    device = device or _owned_rows(user).filter(uid=uid).first()
    if device is None:
        security_event("device_not_owned", user=user, device=uid, source_address=source_address)
        raise Http404("No such device.")
    cached = device.source in (Device.Source.NXQL, Device.Source.NQL)
    if cached and not (device.confirmed_at and device.confirmed_at > nxql_fresh_after()):
        (nql_resolve if device.source == Device.Source.NQL else nxql_resolve)(user, force=True)
        device = _owned_rows(user).filter(uid=uid, confirmed_at__gt=nxql_fresh_after()).first()
        if device is None:
            still_theirs = Device.objects.filter(uid=uid, owner=user).exists()
            security_event(
                "device_unconfirmed" if still_theirs else "device_not_owned",
                user=user,
                device=uid,
                source_address=source_address,
                level=logging.INFO if still_theirs else logging.WARNING,
            )
            raise Http404("No such device.")
    return device


def _owned_rows(user) -> QuerySet[Device]:
    """The user's devices by the same rules resolution uses (only the enabled resolvers' rows)."""
    sources: list[str] = []
    if "directory" in settings.DEVICE_RESOLVERS:
        sources.extend(DIRECTORY_SOURCES)
    if "nxql" in settings.DEVICE_RESOLVERS:
        sources.append(Device.Source.NXQL)
    if "nql" in settings.DEVICE_RESOLVERS:
        sources.append(Device.Source.NQL)
    return Device.objects.filter(owner=user, source__in=sources).select_related("engine")
