"""Security events: one line each on the "actions.security" logger, with who, what, when and from where."""

from __future__ import annotations

import logging
import re

from django.utils import timezone

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
