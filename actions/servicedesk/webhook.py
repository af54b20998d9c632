"""Webhook: a signed JSON POST to TICKETING_WEBHOOK_URL; the reference comes back in the answer.

The body is ``webhook_body`` (README, "Service desk tickets"). ``X-Portal-Timestamp: <Unix seconds>``
says when it was sent, and ``X-Portal-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>"
with TICKETING_WEBHOOK_SECRET>`` signs both: a receiver that refuses timestamps older than a few
minutes cannot be fed a recorded request again later. ``Idempotency-Key: <run id>`` (also the body's
``id``) lets the receiver drop a repeat: the portal sends again after an attempt whose outcome it
could not tell (with a new timestamp and signature).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from django.conf import settings

from . import http
from .base import Attempt, ErrorKind, Opened, TicketContent, TicketError

SIGNATURE_HEADER = "X-Portal-Signature"
TIMESTAMP_HEADER = "X-Portal-Timestamp"
EVENT = "ticket.requested"
WHAT = "The service desk webhook"


def webhook_body(content: TicketContent, attempt: Attempt) -> dict[str, Any]:
    return {
        "event": EVENT,
        "id": attempt.reference,
        "attempt": attempt.number,
        "short_description": content.short_description,
        "description": content.description,
        "category": content.category,
        "assignment_group": content.assignment_group,
        **content.facts,
    }


def sign(timestamp: str, raw: bytes, secret: str) -> str:
    """The signature of the timestamp and the body together: neither can be changed alone."""
    signed = timestamp.encode() + b"." + raw
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def open_ticket(content: TicketContent, attempt: Attempt) -> Opened:
    raw = json.dumps(webhook_body(content, attempt), separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(timestamp, raw, settings.TICKETING_WEBHOOK_SECRET),
        "Idempotency-Key": attempt.reference,
    }
    response = http.send(http.session(), "POST", settings.TICKETING_WEBHOOK_URL, what=WHAT, data=raw, headers=headers)
    reference = dig(http.json_of(response, what=WHAT), settings.TICKETING_WEBHOOK_REFERENCE_FIELD)
    if reference in (None, ""):
        raise TicketError(
            ErrorKind.UNKNOWN,
            f"{WHAT} answered without a ticket reference at {settings.TICKETING_WEBHOOK_REFERENCE_FIELD!r}.",
        )
    return Opened(number=str(reference)[:100])


def dig(data: Any, dotted: str) -> Any:
    """data["a"]["b"] for "a.b"; None where the path does not lead anywhere."""
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data
