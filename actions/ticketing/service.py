"""The Ticket row's life: asked for by the employee, opened by a worker, at most one per run.

    (none) ──ticket_request──▶ requested ──claim──▶ sending ──▶ created (number)
                 failed ──ticket_request ("Try again")──┘  └──▶ requested (retry at next_attempt_at)
                                                          └──▶ failed (permanent, out of attempts or time)

The Ticket row is unique per run, so however often the button is pressed only one request exists;
the claim (requested → sending, a conditional update) lets exactly one worker call the service desk
for it, so a redelivered task is a no-op. An attempt whose outcome is unknown marks the ticket
``uncertain``: the next attempt asks the service desk for the run's incident before opening one.

The broker may be down when the employee asks, or lose a task: the ticket is stored either way, and
beat's sweep (``tickets_sweep``, every TICKETING_SWEEP_INTERVAL_SECONDS) hands to the broker again
the tickets that are due and not in flight.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone, translation

from actions import broker, metrics
from actions.models import Run, Ticket
from actions.runs.states import NEEDS_HELP, is_final
from actions.servicedesk import mail, servicenow, webhook
from actions.servicedesk.base import Attempt, ErrorKind, TicketError
from actions.ticketing.content import ticket_content

log = logging.getLogger("actions.ticketing")
State = Ticket.State
BACKENDS = {"servicenow": servicenow, "webhook": webhook, "email": mail}
HELP_STATUSES = NEEDS_HELP
BATCH = 500


def ticketing_enabled() -> bool:
    return settings.TICKETING in BACKENDS


def needs_help(run: Run) -> bool:
    """A run whose employee may ask IT for help: answered "No", not sent, or with an unknown outcome."""
    return is_final(run.status) and (run.fixed is False or run.status in HELP_STATUSES)


def ticket_of(run: Run) -> Ticket | None:
    """The run's ticket, if asked for: as read with the run (select_related("ticket")), else read now.

    Read now without caching it on the run: a run kept longer than a request would otherwise go on
    answering "no ticket" after one was asked for.
    """
    if not Run.ticket.is_cached(run):
        return Ticket.objects.filter(run=run).first()
    try:
        return run.ticket
    except Ticket.DoesNotExist:
        return None


def deadline_of(ticket: Ticket):
    return ticket.requested_at + timedelta(minutes=settings.TICKETING_DEADLINE_MINUTES)


def stale_after() -> timedelta:
    """A worker that claimed a ticket longer ago than one full call (sign-in, look-up, create) is gone."""
    call = settings.TICKETING_CONNECT_TIMEOUT_SECONDS + settings.TICKETING_READ_TIMEOUT_SECONDS
    return timedelta(seconds=3 * call + 30)


def is_stuck(ticket: Ticket) -> bool:
    """Requested or being opened past the deadline: its task was lost; the employee may try again."""
    return ticket.state in (State.REQUESTED, State.SENDING) and timezone.now() > deadline_of(ticket) + stale_after()


def can_try_again(ticket: Ticket) -> bool:
    return ticket.state == State.FAILED or is_stuck(ticket)


def run_link(run: Run) -> str:
    """The run's page at PORTAL_BASE_URL: never from the request's Host header, which a client chooses."""
    return settings.PORTAL_BASE_URL + run.get_absolute_url()


@dataclass(frozen=True)
class Requested:
    ticket: Ticket
    queued: bool  # this call asked (first time or again); False: it was already asked for
    handed: bool | None  # the broker took its task; None: not known yet (inside an outer transaction)


def ticket_request(*, run: Run, user) -> Requested:
    """Ask for the run's ticket (or ask again after a failure), and hand its task to the broker.

    The caller has checked that the run is the employee's and ``needs_help``. A broker that is down
    is no error: the ticket is stored, and the sweep hands it to the broker once it is back.
    """
    now = timezone.now()
    handed: list[bool] = []
    with transaction.atomic():
        ticket, made = Ticket.objects.get_or_create(
            run=run,
            defaults={
                "backend": settings.TICKETING,
                "run_url": run_link(run),
                "requested_by": user,
                "requested_at": now,
            },
        )
        again = False
        if not made and can_try_again(ticket):
            again = (
                Ticket.objects.filter(pk=ticket.pk, state=ticket.state, updated_at=ticket.updated_at).update(
                    state=State.REQUESTED,
                    backend=settings.TICKETING,
                    attempts=0,
                    # A ticket stuck "being opened" may have been opened: look it up before creating.
                    uncertain=ticket.uncertain or ticket.state == State.SENDING,
                    error="",
                    requested_at=now,
                    next_attempt_at=None,
                    claimed_at=None,
                    updated_at=now,
                )
                == 1
            )
        queued = made or again
        if queued:
            transaction.on_commit(lambda: handed.append(ticket_enqueue(ticket.pk)))
            log.info("ticket for run %s %s", run.pk, "requested" if made else "requested again")
    ticket.refresh_from_db()
    return Requested(ticket=ticket, queued=queued, handed=handed[0] if handed else None)


def ticket_enqueue(ticket_id, *, countdown: float | None = None, stamp: bool = True) -> bool:
    """Hand the ticket's task to the broker; False (and a log line) when it cannot be reached.

    `stamp`: note when (`enqueued_at`); the sweep stamps before it publishes instead. As for runs
    (actions/runs/dispatch.py), a refused hand-over clears the stamp: no message carries the ticket,
    and the sweep's next pass sends it.
    """
    if not broker.try_send("actions.tasks.create_ticket", ticket_id, countdown=countdown, what=f"ticket {ticket_id}"):
        Ticket.objects.filter(pk=ticket_id).update(enqueued_at=None)
        return False
    if stamp:
        Ticket.objects.filter(pk=ticket_id).update(enqueued_at=timezone.now())
    return True


def sweep_after() -> timedelta:
    """How long a due ticket may wait for its task before the sweep hands it to the broker again."""
    return timedelta(seconds=settings.TICKETING_SWEEP_AFTER_SECONDS)


def _lost() -> Q:
    """Tickets due to be sent whose task is not in flight: requested and waiting past sweep_after()
    (first attempt, or a retry past its next_attempt_at), or sending with a worker gone (claim())."""
    now = timezone.now()
    late = now - sweep_after()
    waiting = Q(state=State.REQUESTED) & (
        Q(next_attempt_at__isnull=True, requested_at__lt=late) | Q(next_attempt_at__lt=late)
    )
    abandoned = Q(state=State.SENDING, claimed_at__lt=now - stale_after())
    not_recently_handed = Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=late)
    return (waiting | abandoned) & not_recently_handed


def tickets_sweep() -> int:
    """Beat: hand to the broker each ticket that is due and not in flight. Returns how many were handed.

    Each ticket is claimed first (a conditional update of ``enqueued_at``), so two sweeps running at
    once (a task delivered twice) hand it once; were both to hand it, claim() still lets one worker
    call the service desk. A ticket past its deadline is handed too: its task marks it failed.
    """
    handed = 0
    for pk in list(Ticket.objects.filter(_lost()).order_by("requested_at").values_list("pk", flat=True)[:BATCH]):
        if Ticket.objects.filter(Q(pk=pk) & _lost()).update(enqueued_at=timezone.now()) == 1:
            handed += ticket_enqueue(pk, stamp=False)
    if handed:
        log.info("ticket sweep: handed %s ticket(s) to the broker again", handed)
    return handed


def claim(ticket_id) -> bool:
    """requested (and due) → sending, for exactly one worker; also a sending ticket whose worker is gone."""
    now = timezone.now()
    due = Q(state=State.REQUESTED) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    abandoned = Q(state=State.SENDING, claimed_at__lt=now - stale_after())
    return (
        Ticket.objects.filter(Q(pk=ticket_id) & (due | abandoned)).update(
            state=State.SENDING,
            attempts=F("attempts") + 1,
            claimed_at=now,
            # The gone worker may have opened it: look it up first.
            uncertain=Case(When(state=State.SENDING, then=Value(True)), default=F("uncertain")),
            updated_at=now,
        )
        == 1
    )


def ticket_create(*, ticket_id) -> float | None:
    """One attempt at opening the ticket. Returns the seconds until the next attempt, or None."""
    if not claim(ticket_id):
        log.info("ticket %s not claimed: done, not due, or another worker has it", ticket_id)
        return None
    ticket = Ticket.objects.select_related("run__user", "run__action").get(pk=ticket_id)
    metrics.queue_waited(
        queue="tickets", handed_at=ticket.enqueued_at, due_at=ticket.next_attempt_at, taken_at=ticket.claimed_at
    )
    mine = Q(pk=ticket.pk, state=State.SENDING, attempts=ticket.attempts)
    backend = BACKENDS.get(ticket.backend)
    if backend is None:
        _fail(mine, ticket, f"Ticketing is set to {settings.TICKETING!r}: no service desk to send it to.")
        return None
    if timezone.now() > deadline_of(ticket):
        # No error yet: no attempt reached the service desk (the broker was down, or the task lost).
        _fail(mine, ticket, ticket.error or "The portal could not send the request to the service desk in time.")
        return None
    with translation.override(None):  # the service desk reads the portal's own (English) words
        content = ticket_content(
            ticket.run, run_url=ticket.run_url, default_category=settings.TICKETING_DEFAULT_CATEGORY
        )
    try:
        attempt = Attempt(reference=str(ticket.run_id), number=ticket.attempts, uncertain=ticket.uncertain)
        opened = backend.open_ticket(content, attempt)
    except TicketError as error:
        return _after_error(mine, ticket, error)
    except Exception:  # a bug must not leave the ticket "being opened": it may have gone out
        log.exception("ticket %s: unexpected error", ticket.pk)
        return _after_error(mine, ticket, TicketError(ErrorKind.UNKNOWN, "The portal hit an internal problem."))
    moved = Ticket.objects.filter(mine).update(
        state=State.CREATED,
        number=opened.number,
        external_id=opened.external_id,
        error="",
        uncertain=False,
        updated_at=timezone.now(),
    )
    log.info("ticket for run %s created: %s%s", ticket.run_id, opened.number, "" if moved else " (late, dropped)")
    metrics.ticket_attempt(backend=ticket.backend, outcome="created")
    return None


def _after_error(mine: Q, ticket: Ticket, error: TicketError) -> float | None:
    uncertain = ticket.uncertain or error.kind is ErrorKind.UNKNOWN
    delay = retry_delay(ticket.attempts)
    out_of_time = timezone.now() + timedelta(seconds=delay) > deadline_of(ticket)
    if error.kind is ErrorKind.PERMANENT or ticket.attempts >= settings.TICKETING_MAX_ATTEMPTS or out_of_time:
        tried = "" if error.kind is ErrorKind.PERMANENT else f" The portal tried {ticket.attempts} times."
        _fail(mine, ticket, error.message + tried, uncertain=uncertain)
        return None
    moved = Ticket.objects.filter(mine).update(
        state=State.REQUESTED,
        error=error.message,
        uncertain=uncertain,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        updated_at=timezone.now(),
    )
    log.warning("ticket for run %s: %s (%s); next attempt in %.0f s", ticket.run_id, error.message, error.kind, delay)
    metrics.ticket_attempt(backend=ticket.backend, outcome="retrying")
    return delay if moved else None


def _fail(mine: Q, ticket: Ticket, message: str, *, uncertain: bool | None = None) -> None:
    fields = {"state": State.FAILED, "error": message[:2000], "updated_at": timezone.now()}
    if uncertain is not None:
        fields["uncertain"] = uncertain
    Ticket.objects.filter(mine).update(**fields)
    log.warning("ticket for run %s failed: %s", ticket.run_id, message)
    metrics.ticket_attempt(backend=ticket.backend, outcome="failed")


def retry_delay(attempt: int) -> float:
    ceiling = min(settings.TICKETING_RETRY_MAX_SECONDS, settings.TICKETING_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)
