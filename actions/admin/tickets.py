"""Admin for service desk tickets: read-only, to see what was asked and what the service desk answered.

Searches stay cheap as the tables grow: a run's reference or request UID reaches its ticket through
the run's unique key; a number, an employee or an action is compared whole (any case) before any
start of a name. The tickets table has no index on its number (one pass over it: it holds one row
per run an employee asked help for); an action's name is read from each ticket's run by primary key.
"""

import uuid

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from actions.models import RemoteAction, Ticket
from actions.sql import starts_with
from actions.uids import GUID_RE, reference_bounds


def ticket_search(tickets, term: str) -> Q:
    """The first of these that finds a ticket: its number, its service desk id, the employee whose run
    it is or who asked (user name or e-mail), its run's action by name (any case); else the start of a
    number or of an action's name."""
    users = list(
        get_user_model().objects.filter(Q(username__iexact=term) | Q(email__iexact=term)).values_list("pk", flat=True)
    )
    actions = list(RemoteAction.objects.filter(name__iexact=term).values_list("name", flat=True)[:20])
    for exact in (
        Q(number__iexact=term),
        Q(external_id=term),
        Q(run__user__in=users) | Q(requested_by__in=users),
        Q(run__action_name__in=[*actions, term]),
    ):
        if tickets.filter(exact).exists():
            return exact
    return starts_with("number", term) | starts_with("run__action_name", term)


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("requested_at", "number", "state", "action_name", "backend", "attempts", "run", "requested_by")
    list_filter = ("state", "backend", "requested_at")
    search_fields = ("number",)  # shows the search box; get_search_results decides what it searches
    search_help_text = _(
        "A ticket number (INC0010001, or its start), the run's reference (FMD-8D41162B) or request UID, "
        "an employee's user name or e-mail, or an action's name (any case, or its start)."
    )
    list_select_related = ("run", "requested_by")
    readonly_fields = [f.name for f in Ticket._meta.fields]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()[:200]
        if not term:
            return queryset, False
        if GUID_RE.fullmatch(term):
            return queryset.filter(run_id=uuid.UUID(term)), False
        bounds = reference_bounds(term)
        if bounds:
            low, high = bounds
            return queryset.filter(run_id__gte=uuid.UUID(low), run_id__lte=uuid.UUID(high)), False
        return queryset.filter(ticket_search(queryset, term)), False

    @admin.display(description=_("action"), ordering="run__action_name")
    def action_name(self, ticket: Ticket) -> str:
        return ticket.run.action_name

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
