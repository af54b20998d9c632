"""Security events: one line each on the "actions.security" logger, with who, what, when and from where."""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.utils import timezone

from actions import metrics

security_log = logging.getLogger("actions.security")
_PRINTABLE_RE = re.compile(r"[^\x21-\x7e]")


def security_event(
    event: str, *, user, device, source_address: str, level: int = logging.WARNING, stage: str = "submit"
) -> None:
    at = timezone.now().isoformat()
    username = user.get_username() if getattr(user, "is_authenticated", False) else "-"
    # The UID may be anything a client sent: bounded and without control characters or spaces.
    shown = _PRINTABLE_RE.sub("?", str(device)[:64]) if device is not None else "-"
    source = _PRINTABLE_RE.sub("?", (source_address or "-")[:64])
    security_log.log(
        level,
        "%s user=%s device=%s at=%s source=%s stage=%s",
        event,
        username,
        shown or "-",
        at,
        source,
        stage,
        extra={
            "event": event,
            "user": username,
            "device": shown,
            "at": at,
            "source_address": source,
            "stage": stage,
        },
    )


def sign_in_event(
    event: str, *, username: str, source_address: str, reason: str = "", level: int = logging.WARNING
) -> None:
    """A sign-in event (lock-out, refused token, ignored proxy header...): who tried, from where, why.

    The user name is what was typed or claimed, bounded and printable; it says nothing of whether
    such a user exists.
    """
    metrics.sign_in_event(event)
    at = timezone.now().isoformat()
    shown = _PRINTABLE_RE.sub("?", (username or "-")[:150])
    source = _PRINTABLE_RE.sub("?", (source_address or "-")[:64])
    why = _PRINTABLE_RE.sub("_", reason[:200]) or "-"
    security_log.log(
        level,
        "%s user=%s at=%s source=%s reason=%s",
        event,
        shown,
        at,
        source,
        why,
        extra={"event": event, "user": shown, "at": at, "source_address": source, "reason": why, "stage": "sign-in"},
    )


def client_address(request) -> str:
    """The employee's address, for security events. Behind our TLS proxy (BEHIND_TLS_PROXY), the
    last X-Forwarded-For entry: the one that proxy added; earlier entries are the client's to forge."""
    if settings.BEHIND_TLS_PROXY:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1][:64]
    return request.META.get("REMOTE_ADDR", "")
