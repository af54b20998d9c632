"""Admin for runs: read-only history, with a retry that makes a new, linked run.

Built to stay fast with millions of runs: searches are exact or prefix lookups that an index
serves, newest first (a request UID is one primary-key lookup), no date drill-down, no filter that lists the
table's distinct users, and no full count: the list counts at most COUNT_CAP rows.

A service desk ticket's number is looked up in the tickets table first (one row per run an employee
asked help for, a small fraction of the runs; no index on the number: one pass over that table, any
case), and its runs then by primary key.
"""

import uuid
from functools import cached_property

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from actions.catalog.parameters import InvalidParams
from actions.models import RUN_ON_ANY_DEVICE, Device, EngineResult, RemoteAction, Run, RunAttempt, Ticket
from actions.runs.submit import RunRefused, run_submit
from actions.sql import starts_with
from actions.uids import DEVICE_UID_RE, GUID_RE, reference_bounds, run_reference


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class EngineResultInline(ReadOnlyInline):
    model = EngineResult
    fields = ("engine_name", "database_uid", "code", "message")
    readonly_fields = fields


class RunAttemptInline(ReadOnlyInline):
    model = RunAttempt
    fields = ("number", "started_at", "finished_at", "outcome", "error_code", "error_message")
    readonly_fields = fields


COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    """Counts at most COUNT_CAP rows: the admin pages through a bounded window, newest first."""

    @cached_property
    def count(self) -> int:
        # Unordered: any COUNT_CAP rows will do, read straight from an index that fits the filter,
        # instead of sorting all of a heavy user's 50,000 runs first (bench/growth.py).
        return self.object_list.order_by().values("pk")[:COUNT_CAP].count()


class RunChangeList(ChangeList):
    """The list reads only the columns it shows (and the users' names), not each run's parameters,
    outputs and approval: a 100-row page builds 100 runs from a few columns instead of ~50."""

    def get_results(self, request):
        user_name = get_user_model().USERNAME_FIELD  # a user's str()
        self.queryset = self.queryset.only(
            *(name for name in self.list_display if name in RUN_COLUMNS),
            *("action_name", "device_name", "device_uid", "status"),  # a run's str(): its checkbox's label
            f"user__{user_name}",
            f"requested_by__{user_name}",
        )
        super().get_results(request)


RUN_COLUMNS = {field.name for field in Run._meta.concrete_fields}


def search_match(runs, term: str) -> Q:
    """What a search for `term` means, decided on the small tables first: a user (name or e-mail), else
    a device name, else an action name, exactly (any case). Each is one equality on an index ordered by
    date, so the newest runs come straight from it however many match (a device with 50,000 runs
    included: bench/growth.py). Nothing exact: the runs whose device or action name starts with it."""
    users = list(
        get_user_model().objects.filter(Q(username__iexact=term) | Q(email__iexact=term)).values_list("pk", flat=True)
    )
    if users:
        return Q(user__in=users)
    for field, known in (("device_name", Device), ("action_name", RemoteAction)):
        # The name as it is spelled today, else as typed (a run keeps the name it was sent with). One
        # name at a time: PostgreSQL reads a single equality in date order, not a list of names.
        spelled = list(known.objects.filter(name__iexact=term).values_list("name", flat=True)[:20])
        for names in (spelled, [term]):
            exact = Q(**{f"{field}__in": names})
            if names and runs.filter(exact).exists():
                return exact
    # Each column on its own, served by its own index, instead of one OR that PostgreSQL answers by
    # walking the whole table in date order (4 s at 10^6 runs: bench/growth.py). A range of bytes, not
    # LIKE: the index serves it in a generic plan too (actions/sql.py). The newest COUNT_CAP runs of a
    # column, ordered and limited: so a generic plan reads them from that index, never the table in
    # date order (255 ms at 10^6 runs for the bare range, as the list's page would ask it).
    newest = [
        runs.filter(match).order_by("-created_at").values("pk")[:COUNT_CAP]
        for match in (starts_with("device_name", term), starts_with("action_name", term))
    ]
    matching = [found for found in newest if found.count()]  # counted in the database: no ids fetched
    if len(matching) == 1:
        # The usual case: a subquery PostgreSQL joins by primary key. Its ids never pass through
        # Python: ~1,000 at 10^6 runs, bound twice (count and page), cost more than the rest.
        return Q(pk__in=matching[0])
    # Both (a start of a device name and of an action name): their ids, as one list.
    return Q(pk__in={pk for found in matching for pk in found.values_list("pk", flat=True)})


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "reference",
        "action_name",
        "user",
        "device_name",
        "status",
        "attempts",
        "requested_by",
    )
    list_filter = ("status", "action")
    search_fields = ("device_name",)  # shows the search box; get_search_results decides what it searches
    search_help_text = _(
        "A reference the employee reads out (FMD-8D41162B, or its start), a service desk ticket number "
        "(INC0010001), a request UID, a device UID, an employee's user name or e-mail, a device or action "
        "name (any case), or the start of a device or action name (case as typed)."
    )
    list_select_related = ("user", "requested_by")
    paginator = CappedPaginator
    show_full_result_count = False

    def get_changelist(self, request, **kwargs):
        return RunChangeList

    def get_search_results(self, request, queryset, search_term):
        """Lookups an index serves: a request UID by primary key, a device UID exactly, then search_match."""
        term = search_term.strip()[:200]
        if not term:
            return queryset, False
        if GUID_RE.fullmatch(term):  # as the run page and the logs show it, with dashes
            return queryset.filter(pk=uuid.UUID(term)), False
        bounds = reference_bounds(term)
        if bounds:  # the run page's short reference: a range of the primary key, from its index
            low, high = bounds
            return queryset.filter(pk__gte=uuid.UUID(low), pk__lte=uuid.UUID(high)), False
        if DEVICE_UID_RE.fullmatch(term):
            return queryset.filter(device_uid=term.lower()), False
        ticketed = list(Ticket.objects.filter(number__iexact=term).values_list("run_id", flat=True)[:COUNT_CAP])
        if ticketed:
            return queryset.filter(pk__in=ticketed), False
        return queryset.filter(search_match(queryset, term)), False

    @admin.display(description=_("Reference"))
    def reference(self, run: Run) -> str:
        return run_reference(run.pk)

    inlines = [EngineResultInline, RunAttemptInline]
    actions = ["retry_runs"]
    readonly_fields = ["reference", *(f.name for f in Run._meta.fields)]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "reference",
                    "status",
                    "user",
                    "requested_by",
                    "retry_of",
                    "created_at",
                    "sending_at",
                    "finished_at",
                )
            },
        ),
        (
            _("What was sent"),
            {
                "fields": (
                    "action",
                    "action_name",
                    "action_uid",
                    "device",
                    "device_uid",
                    "device_name",
                    "timeout_seconds",
                    "engine_uids",
                    "params",
                )
            },
        ),
        (
            _("Approval"),
            {
                "fields": (
                    "reason",
                    "approver_group",
                    "approval_expires_at",
                    "decided_by",
                    "decided_at",
                    "decision_comment",
                )
            },
        ),
        (
            _("Progress"),
            {
                "fields": (
                    "attempts",
                    "max_attempts",
                    "next_attempt_at",
                    "error_code",
                    "error_kind",
                    "error_message",
                    "idempotency_key",
                )
            },
        ),
    )

    def action_checkbox(self, obj):
        """The row's checkbox exactly as Django's own (CheckboxInput), written without rendering a
        template per row: that was a third of a 100-row page's time (bench/growth.py)."""
        label = format_html(gettext("Select this object for an action - {}"), str(obj))
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            str(obj.pk),
            label,
        )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # the view permission shows the page; nothing on it may change

    @admin.action(description=_("Retry the selected failed or unknown runs (new runs, linked)"), permissions=["retry"])
    def retry_runs(self, request, queryset):
        made, skipped = 0, []
        for run in queryset.select_related("action", "device", "user"):
            if run.status not in (Run.Status.FAILED, Run.Status.UNKNOWN) or run.action is None or run.device is None:
                skipped.append(f"{run.action_name} ({run.get_status_display()})")
                continue
            try:
                with transaction.atomic():
                    run_submit(
                        user=run.user,
                        action=run.action,
                        device=run.device,
                        params=run.params,
                        requested_by=request.user,
                        retry_of=run,
                    )
                made += 1
            except (RunRefused, InvalidParams) as refusal:
                skipped.append(f"{run.action_name}: {refusal}")
        if made:
            self.message_user(
                request,
                ngettext("%(count)d new run queued.", "%(count)d new runs queued.", made) % {"count": made},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request, gettext("Not retried: %(runs)s") % {"runs": "; ".join(skipped)}, messages.WARNING
            )

    def has_retry_permission(self, request):
        # The permission dispatch checks for a run asked by IT: without it the new run would be refused.
        return request.user.has_perm(RUN_ON_ANY_DEVICE)
