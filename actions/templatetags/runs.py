"""A run's words in templates: {{ run.pk|run_reference }}, {{ run.status|status_label }}, {{ moment|when }}."""

from django import template
from django.utils.translation import gettext, gettext_noop

from actions.models import Run, Ticket
from actions.runs.wording import status_label as _status_label
from actions.runs.wording import when_text
from actions.uids import run_reference as _run_reference

register = template.Library()


@register.filter
def run_reference(run_id) -> str:
    return _run_reference(run_id)


@register.filter
def status_label(status: str) -> str:
    return _status_label(status)


@register.filter
def when(moment) -> str:
    """A moment with its time zone named ("Dec. 5, 2026, 8:12 a.m. CET"); "" for none."""
    return when_text(moment) if moment else ""


@register.filter
def ticket_of_run(run: Run) -> Ticket | None:
    """The run's ticket as read with it (select_related("ticket")); None if none was asked for."""
    try:
        return run.ticket
    except Ticket.DoesNotExist:
        return None


TICKET_WORDS = {
    Ticket.State.REQUESTED: gettext_noop("Being opened"),
    Ticket.State.SENDING: gettext_noop("Being opened"),
    Ticket.State.FAILED: gettext_noop("Could not be opened"),
}


@register.filter
def ticket_words(ticket: Ticket) -> str:
    """A ticket for the employee: its number once the service desk gave one, else where it stands."""
    if ticket.state == Ticket.State.CREATED:
        return ticket.number or gettext("Opened")
    return gettext(TICKET_WORDS[ticket.state]) if ticket.state in TICKET_WORDS else ticket.get_state_display()
