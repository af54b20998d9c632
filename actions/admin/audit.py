"""The audit trail in admin: read-only for everyone, filtered by object type and person, exported as CSV.

Replaces django-auditlog's own admin, whose delete is allowed in some paths and whose filters read
the whole table for their choices.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC

import auditlog.admin  # noqa: F401  (registers its own LogEntryAdmin, replaced below)
from auditlog.mixins import LogEntryAdminMixin
from auditlog.models import LogEntry
from auditlog.render import render_logentry_changes_html
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from actions.audit import audit_models, event_of
from actions.models import Run

# django-auditlog ships no French or German. Its words that the trail's pages show around the portal's
# own columns (the model's and app's names in titles and breadcrumbs, the change table's headers) are
# translated in the portal's catalog: Django merges every catalog, and LOCALE_PATHS' entries win.
AUDITLOG_WORDS = [
    gettext_noop("Audit log"),
    gettext_noop("log entry"),
    gettext_noop("log entries"),
    gettext_noop("Field"),
    gettext_noop("From"),
    gettext_noop("To"),
    gettext_noop("Relationship"),
    gettext_noop("Objects"),
    gettext_noop("Created {repr:s}"),
    gettext_noop("Updated {repr:s}"),
    gettext_noop("Deleted {repr:s}"),
    gettext_noop("Logged {repr:s}"),
]

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = [
    "when (UTC)",
    "person",
    "person's e-mail",
    "address",
    "what",
    "object type",
    "object id",
    "object",
    "changes (before → after)",
    "details",
]


def csv_safe(value) -> str:
    """The cell as text, with a leading ' when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def changes_text(entry: LogEntry) -> str:
    parts = []
    for field, change in (entry.changes_dict or {}).items():
        if isinstance(change, dict) and change.get("type") == "m2m":
            verb = gettext("added") if change.get("operation") == "add" else gettext("removed")
            parts.append(f"{field}: {verb} {', '.join(str(o) for o in change.get('objects', []))}")
        elif isinstance(change, (list, tuple)) and len(change) == 2:
            parts.append(f"{field}: {change[0]} → {change[1]}")
        else:
            parts.append(f"{field}: {json.dumps(change, default=str)}")
    return "; ".join(parts)


def details_text(entry: LogEntry) -> str:
    data = entry.additional_data if isinstance(entry.additional_data, dict) else {}
    return "; ".join(f"{key}: {value}" for key, value in data.items() if key != "event")


def person_of(entry: LogEntry) -> str:
    if entry.actor_id is None:  # nobody signed in did it, or the person was deleted since
        if entry.actor_email:
            return gettext("%(email)s (deleted user)") % {"email": entry.actor_email}
        return gettext("the portal")
    return entry.actor.get_username()


class ObjectTypeFilter(admin.SimpleListFilter):
    """The kinds of object the trail records: a fixed list, no scan of the table."""

    title = _("object type")
    parameter_name = "object_type"

    def lookups(self, request, model_admin):
        models = [*audit_models(), Run]
        types = ContentType.objects.get_for_models(*models)
        return sorted(
            ((str(ct.pk), str(model._meta.verbose_name_plural).capitalize()) for model, ct in types.items()),
            key=lambda item: item[1],
        )

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(content_type_id=value) if value and value.isdigit() else queryset


class PersonFilter(admin.SimpleListFilter):
    """Who did it: IT staff by name (employees: search their user name), or the portal itself."""

    title = _("person")
    parameter_name = "person"
    PORTAL = "portal"

    def lookups(self, request, model_admin):
        staff = get_user_model().objects.filter(is_staff=True).order_by("username")
        return [(self.PORTAL, gettext("The portal (no person)")), *((str(u.pk), u.get_username()) for u in staff)]

    def queryset(self, request, queryset):
        value = self.value()
        if value == self.PORTAL:
            return queryset.filter(actor__isnull=True)
        return queryset.filter(actor_id=value) if value and value.isdigit() else queryset


admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditTrailAdmin(LogEntryAdminMixin, admin.ModelAdmin):
    # The portal's own columns, with translated names (django-auditlog's have none in French or German).
    list_display = ["when", "person", "address", "what", "object", "msg_short"]
    list_display_links = ["when"]
    list_filter = [ObjectTypeFilter, PersonFilter]
    list_select_related = ["content_type", "actor"]
    search_fields = ["object_repr", "=actor__username", "=object_pk"]
    search_help_text = _("An object's name, a person's exact user name, or an object's id.")
    fields = ["when", "person", "address", "what", "object", "msg", "details"]
    readonly_fields = fields
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # nobody, superusers included: the trail is kept as written

    @admin.display(description=_("when"), ordering="timestamp")
    def when(self, entry: LogEntry):
        return entry.timestamp  # shown as the admin shows a date field: local time, the language's format

    @admin.display(description=_("address"))
    def address(self, entry: LogEntry) -> str | None:
        return entry.remote_addr  # None: the admin's empty value ("-")

    @admin.display(description=_("object"))
    def object(self, entry: LogEntry):
        return self.resource_url(entry)  # a link to the object's admin page, where it has one

    @admin.display(description=_("person"), ordering="actor__username")
    def person(self, entry: LogEntry) -> str:
        return person_of(entry)

    @admin.display(description=_("what"))
    def what(self, entry: LogEntry) -> str:
        return event_of(entry)

    @admin.display(description=_("changes"))
    def msg_short(self, entry: LogEntry) -> str:
        text = changes_text(entry)
        return text if len(text) <= 120 else text[:119] + "…"

    @admin.display(description=_("changes"))
    def msg(self, entry: LogEntry):
        return render_logentry_changes_html(entry) or format_html("<p>{}</p>", "—")

    @admin.display(description=_("details"))
    def details(self, entry: LogEntry) -> str:
        return details_text(entry) or "—"

    def get_urls(self):
        return [
            path("export.csv", self.admin_site.admin_view(self.export_view), name="auditlog_logentry_export"),
            *super().get_urls(),
        ]

    def export_view(self, request):
        """The records the list shows (its filters and search), newest first, as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        entries = changelist.get_queryset(request).select_related("content_type", "actor").order_by("-timestamp")
        response = StreamingHttpResponse(self._csv_rows(entries), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
        return response

    def _csv_rows(self, entries):
        class Line:
            def write(self, value: str) -> str:
                return value

        writer = csv.writer(Line())
        yield "\ufeff" + writer.writerow(CSV_COLUMNS)  # the BOM: spreadsheets then read UTF-8
        for entry in entries.iterator(chunk_size=1000):
            yield writer.writerow(
                csv_safe(value)
                for value in (
                    entry.timestamp.astimezone(UTC).isoformat(),
                    person_of(entry),
                    entry.actor_email or "",
                    entry.remote_addr or "",
                    event_of(entry),
                    entry.content_type.name,
                    entry.object_pk,
                    entry.object_repr,
                    changes_text(entry),
                    details_text(entry),
                )
            )
