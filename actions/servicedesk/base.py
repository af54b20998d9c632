"""What every service desk transport shares: the ticket's content, which attempt this is, and the error kinds.

Plain values only: the ticketing service (actions/ticketing/) builds them from the run and the
Ticket row; the transports below know no model."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ErrorKind(StrEnum):
    RETRYABLE = "retryable"  # nothing can have been opened: try again
    UNKNOWN = "unknown"  # the request may have opened a ticket: look it up (or dedupe) before opening again
    PERMANENT = "permanent"  # trying again will not help: configuration, credentials, a refusal


class TicketError(Exception):
    def __init__(self, kind: ErrorKind, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Opened:
    number: str  # the reference the employee quotes
    external_id: str = ""  # the service desk's own id (ServiceNow sys_id)


@dataclass(frozen=True)
class TicketContent:
    """Everything IT needs about the run, as text (description) and as data (facts)."""

    short_description: str
    description: str
    facts: dict[str, Any] = field(default_factory=dict)
    category: str = ""
    assignment_group: str = ""


@dataclass(frozen=True)
class Attempt:
    """Which request for help this is, as plain values: the run it is about, and how far it got."""

    reference: str  # the run's id: ServiceNow's correlation id, the webhook's id and Idempotency-Key
    number: int = 1  # this attempt, counted from 1
    uncertain: bool = False  # an earlier attempt may have opened it: look it up before opening another
