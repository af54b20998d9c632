"""The audit trail: who changed what, when, before and after, from which address.

Changes to the models IT curates are recorded by django-auditlog (one table, `auditlog.LogEntry`),
registered here: its signals see every save and delete of a single object and every m2m change
(who may see an action, its Engines). They do not see QuerySet.update() or bulk_create(), so the
code that writes these models saves object by object. Events that are not a change of one of these
models (IT retrying a run, running an action on someone else's device, approvals) are recorded with
`audit_event`. The actor and address of a request come from portal.middleware.AuditMiddleware; outside
a request (workers, commands) they are empty: the portal itself did it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.contrib.auth.models import Group
from django.db import models
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from actions.models import ActionParameter, Category, Device, Engine, RemoteAction

# What each recorded event means, in the words the admin and the CSV show (translated where shown).
EVENTS = {
    "admin_retry": gettext_noop("IT retried a run"),
    "run_for_other": gettext_noop("Run on another person's device"),
    "approval_granted": gettext_noop("Approved a request"),
    "approval_denied": gettext_noop("Denied a request"),
    "approval_no_longer_allowed": gettext_noop("Approved a request that could no longer run (ended unsent)"),
    "catalog_exported": gettext_noop("Exported the catalog"),
    "catalog_imported": gettext_noop("Imported a catalog file"),
}


def audit_register() -> None:
    """Record every change to these models (called once, when the app is ready).

    Left out: fields that change by themselves (an action's `updated_at`, an Engine's sync time,
    a device's last-seen and confirmation times); a change of anything else is recorded.
    """
    auditlog.register(RemoteAction, exclude_fields=["updated_at"], m2m_fields={"groups", "engines"})
    auditlog.register(ActionParameter)
    auditlog.register(Category)
    auditlog.register(Engine, exclude_fields=["last_synced_at"])
    auditlog.register(Device, exclude_fields=["last_seen_at", "confirmed_at"])
    auditlog.register(Group, m2m_fields={"permissions"})  # the groups visibility and approvals name


def audit_models() -> list[type[models.Model]]:
    """The models whose changes are recorded, for the admin's filter by object type."""
    return list(auditlog.get_models())


def audit_address(value: str | None) -> str | None:
    """An IP address as the audit table stores it, or None when `value` is not one."""
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def audit_event(
    event: str,
    *,
    target: models.Model,
    actor=None,
    created: bool = False,
    changes: dict[str, tuple[Any, Any]] | None = None,
    details: dict[str, Any] | None = None,
) -> LogEntry:
    """Record `event` (a key of EVENTS) about `target`: by `actor` (None: the portal itself), with
    `changes` as {field: (before, after)} and `details` as plain values. Within a request, the
    request's address is added (and its signed-in user, when `actor` is not given)."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}")
    # The trail is kept as written, in the portal's own (English) words, whatever the language of the
    # request: a status label or an object's name is written untranslated.
    with translation.override(None):
        entry = LogEntry.objects.log_create(
            target,
            force_log=True,
            action=LogEntry.Action.CREATE if created else LogEntry.Action.UPDATE,
            changes={field: [_text(before), _text(after)] for field, (before, after) in (changes or {}).items()},
            actor=actor,
            actor_email=getattr(actor, "email", None) or None,
            additional_data={"event": event, **{key: _text(value) for key, value in (details or {}).items()}},
        )
    assert entry is not None  # force_log: always written
    return entry


def _text(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def event_of(entry: LogEntry) -> str:
    """What the record says happened, in plain words: an event's meaning, else created/changed/deleted."""
    data = entry.additional_data if isinstance(entry.additional_data, dict) else {}
    event = data.get("event")
    if event:
        return gettext(EVENTS[event]) if event in EVENTS else str(event)
    return {
        LogEntry.Action.CREATE: gettext("Created"),
        LogEntry.Action.UPDATE: gettext("Changed"),
        LogEntry.Action.DELETE: gettext("Deleted"),
    }.get(entry.action, gettext("Viewed"))
