"""The ticket sweep: a ticket the broker never took (or lost) reaches the service desk anyway, once."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from actions.models import Ticket
from actions.tasks import create_ticket, sweep_tickets
from actions.ticketing.service import stale_after, tickets_sweep
from tests.conftest import BROKER_DOWN
from tests.tickets_support import make_run_needing_help, request_ticket

State = Ticket.State


def waiting(ticket, seconds):
    """The ticket as if asked for `seconds` ago, its task never handed to the broker."""
    Ticket.objects.filter(pk=ticket.pk).update(requested_at=timezone.now() - timedelta(seconds=seconds))


def test_a_ticket_the_broker_never_took_is_handed_to_it_once_after_a_short_wait(alice, servicenow, ticket_queue):
    ticket = request_ticket(make_run_needing_help(alice))  # its task was not handed (broker down)

    assert tickets_sweep() == 0  # just asked for: its own task may still be on its way
    assert ticket_queue() == []

    waiting(ticket, django_settings.TICKETING_SWEEP_AFTER_SECONDS + 5)
    assert tickets_sweep() == 1
    assert tickets_sweep() == 0  # handed a moment ago: in flight, not handed again
    sweep_tickets()  # the sweep's own task delivered twice: still nothing more
    assert ticket_queue() == [ticket.pk]

    create_ticket(ticket.pk)
    create_ticket(ticket.pk)  # and were the ticket's task delivered twice, one incident

    ticket.refresh_from_db()
    assert (ticket.state, ticket.number) == (State.CREATED, "INC0010001")
    assert len(servicenow.incidents()) == 1
    assert tickets_sweep() == 0 and ticket_queue() == [ticket.pk]


def test_a_ticket_handed_long_ago_and_still_requested_is_handed_again(alice, servicenow, ticket_queue):
    ticket = request_ticket(make_run_needing_help(alice))
    long_ago = timezone.now() - timedelta(seconds=django_settings.TICKETING_SWEEP_AFTER_SECONDS + 5)
    Ticket.objects.filter(pk=ticket.pk).update(requested_at=long_ago, enqueued_at=long_ago)  # the broker lost it

    assert tickets_sweep() == 1
    assert ticket_queue() == [ticket.pk]


def test_a_retry_is_handed_again_only_once_it_is_overdue(alice, servicenow, ticket_queue):
    ticket = request_ticket(make_run_needing_help(alice))
    waiting(ticket, 3600)
    after = django_settings.TICKETING_SWEEP_AFTER_SECONDS
    Ticket.objects.filter(pk=ticket.pk).update(attempts=1, next_attempt_at=timezone.now() + timedelta(seconds=30))
    assert tickets_sweep() == 0  # its retry is planned and its message waits in the broker

    Ticket.objects.filter(pk=ticket.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=after + 5))
    assert tickets_sweep() == 1
    assert ticket_queue() == [ticket.pk]


def test_a_ticket_being_opened_is_left_alone_until_its_worker_is_surely_gone(alice, servicenow, ticket_queue):
    ticket = request_ticket(make_run_needing_help(alice))
    waiting(ticket, 300)  # within the deadline (TICKETING_DEADLINE_MINUTES)
    Ticket.objects.filter(pk=ticket.pk).update(state=State.SENDING, attempts=1, claimed_at=timezone.now())
    assert tickets_sweep() == 0  # in flight: a worker is calling the service desk

    gone = timezone.now() - stale_after() - timedelta(seconds=1)
    Ticket.objects.filter(pk=ticket.pk).update(claimed_at=gone)
    assert tickets_sweep() == 1
    assert ticket_queue() == [ticket.pk]

    create_ticket(ticket.pk)

    ticket.refresh_from_db()
    assert (ticket.state, ticket.attempts) == (State.CREATED, 2)
    # The gone worker may have opened it: the service desk is asked before a new incident is opened.
    assert [r["method"] for r in servicenow.requests()] == ["GET", "POST"]


def test_a_ticket_the_broker_kept_past_its_deadline_fails_with_a_truthful_message(alice, servicenow, ticket_queue):
    ticket = request_ticket(make_run_needing_help(alice))
    waiting(ticket, django_settings.TICKETING_DEADLINE_MINUTES * 60 + 60)

    assert tickets_sweep() == 1
    create_ticket(ticket.pk)

    ticket.refresh_from_db()
    assert ticket.state == State.FAILED  # not left "requested" for ever: the page offers "Try again"
    assert ticket.error == "The portal could not send the request to the service desk in time."
    assert servicenow.requests() == []


@pytest.mark.parametrize("state", [State.CREATED, State.FAILED])
def test_a_ticket_that_is_done_is_never_handed(alice, servicenow, ticket_queue, state):
    ticket = request_ticket(make_run_needing_help(alice))
    waiting(ticket, 3600)
    Ticket.objects.filter(pk=ticket.pk).update(state=state)

    assert tickets_sweep() == 0 and ticket_queue() == []


def test_with_the_broker_still_down_the_sweep_hands_nothing_and_tries_again_later(
    alice, servicenow, ticket_queue, use_broker
):
    ticket = request_ticket(make_run_needing_help(alice))
    waiting(ticket, 3600)
    use_broker(BROKER_DOWN)

    assert tickets_sweep() == 0

    ticket.refresh_from_db()
    assert (ticket.state, ticket.enqueued_at) == (State.REQUESTED, None)  # no message carries it
    use_broker(django_settings.CELERY_BROKER_URL)  # the broker is back
    assert tickets_sweep() == 1  # at the next pass, not a sweep period later
    assert ticket_queue() == [ticket.pk]


def test_beat_runs_the_sweep_on_the_maintenance_queue_and_drops_a_late_copy(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-tickets"]
    assert entry["task"] == "actions.tasks.sweep_tickets"
    assert entry["options"]["expires"] == entry["schedule"] == settings.TICKETING_SWEEP_INTERVAL_SECONDS
    assert settings.CELERY_TASK_ROUTES["actions.tasks.sweep_tickets"] == {"queue": settings.MAINTENANCE_QUEUE}


def test_trying_again_a_ticket_stuck_being_opened_looks_it_up_before_opening_another(alice, servicenow):
    ticket = request_ticket(make_run_needing_help(alice))
    long_ago = timezone.now() - timedelta(minutes=django_settings.TICKETING_DEADLINE_MINUTES) - stale_after() * 2
    Ticket.objects.filter(pk=ticket.pk).update(state=State.SENDING, attempts=1, requested_at=long_ago)

    again = request_ticket(ticket.run)  # the employee's "Try again"

    assert (again.state, again.attempts, again.uncertain) == (State.REQUESTED, 0, True)
