"""'Get help from IT': the employee asks for a service desk ticket about one of their runs."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from actions.models import Run, Ticket
from actions.runs.selectors import runs_of
from actions.ticketing.service import can_try_again, needs_help, ticket_of, ticket_request, ticketing_enabled


@require_POST
def run_get_help(request, pk):
    # Another employee's run is a 404, exactly like a run that does not exist.
    run = get_object_or_404(runs_of(request.user).select_related("action"), pk=pk)
    if not ticketing_enabled():
        raise Http404("No service desk is connected.")
    if not needs_help(run):
        messages.info(
            request, gettext("This run is not one IT can help with from here: it is still running or it worked.")
        )
        return redirect(run)
    asked = ticket_request(run=run, user=request.user)
    ticket = asked.ticket
    if asked.queued and asked.handed is False:  # the broker is down: the sweep sends it when it is back
        messages.success(
            request,
            gettext(
                "Your request for help is saved; it will reach the service desk in a few minutes. "
                "Its ticket number appears on this page once the service desk gives one."
            ),
        )
    elif asked.queued:
        messages.success(
            request,
            gettext(
                "Your request for help is on its way to the service desk. "
                "Its ticket number appears on this page once the service desk gives one."
            ),
        )
    elif ticket.state == Ticket.State.CREATED:
        messages.info(request, gettext("IT already has a ticket for this run: %(number)s.") % {"number": ticket.number})
    else:
        messages.info(request, gettext("Your request for help is already on its way to the service desk."))
    return redirect(run)


def get_help_context(run: Run) -> dict:
    """What templates/actions/_get_help.html needs (also run_as_json's "ticket")."""
    ticket = ticket_of(run)
    return {
        "ticketing": ticketing_enabled(),
        "needs_help": needs_help(run),
        "ticket": ticket,
        "ticket_try_again": bool(ticket and can_try_again(ticket)),
    }


def ticket_as_json(run: Run) -> dict | None:
    """The run's ticket for the live page (run_status): state, number and what to do."""
    ticket = ticket_of(run)
    if ticket is None:
        return {"state": None, "can_request": ticketing_enabled() and needs_help(run)}
    return {
        "state": ticket.state,
        "state_label": ticket.get_state_display(),
        "number": ticket.number,
        "error": ticket.error if ticket.state == Ticket.State.FAILED else "",
        "try_again": can_try_again(ticket),
        "can_request": False,
    }
