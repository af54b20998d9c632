"""Admin for the catalog area: remote actions, their parameters, categories."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import slugify

from actions.admin.plain_text import PlainTextAdmin
from actions.catalog.forms import ActionParameterAdminForm, ActionParameterFormSet, RemoteActionAdminForm
from actions.catalog.nexthink_import import remote_actions_import, workflow_summary, workflows_import
from actions.catalog.parameters import is_placeholder_uid, placeholder_uid
from actions.models import ActionParameter, Category, RemoteAction
from actions.nexthink.errors import ActApiError
from actions.nexthink.infinity.client import infinity_client_from_settings
from actions.views.catalog import action_preview


class ActionParameterInline(PlainTextAdmin, admin.StackedInline):
    model = ActionParameter
    form = ActionParameterAdminForm
    formset = ActionParameterFormSet
    extra = 0
    fieldsets = [
        (None, {"fields": [("name", "label"), "help_text", ("kind", "required", "display_order")]}),
        ("Values", {"fields": ["default", "choices", ("max_length", "min_value", "max_value")]}),
        ("Validation", {"fields": [("regex", "regex_message")]}),
        ("Systems whose script uses it", {"fields": [("used_by_windows", "used_by_macos")]}),
    ]


class CategoryOrderForm(forms.ModelForm):
    """A row of the categories list: its order box is labelled with the category's name (a screen
    reader otherwise reads a row of unnamed number boxes)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "display_order" in self.fields:
            self.fields["display_order"].widget.attrs["aria-label"] = f"Display order of {self.instance.name}"


@admin.register(Category)
class CategoryAdmin(PlainTextAdmin, admin.ModelAdmin):
    list_display = ["name", "display_order", "action_count"]
    list_editable = ["display_order"]
    search_fields = ["name"]

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, **{"form": CategoryOrderForm} | kwargs)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(action_count=Count("actions"))

    @admin.display(description="actions", ordering="action_count")
    def action_count(self, obj) -> int:
        return obj.action_count


def unique_slug(base: str) -> str:
    base = slugify(base)[:100] or "action"
    slug, n = f"{base}-copy", 2
    while RemoteAction.objects.filter(slug=slug).exists():
        slug, n = f"{base}-copy-{n}", n + 1
    return slug


@transaction.atomic
def duplicate_action(action: RemoteAction) -> RemoteAction:
    """A disabled copy with its parameters, groups and Engines, a new slug and a placeholder UID."""
    original_pk = action.pk
    groups, engines = list(action.groups.all()), list(action.engines.all())
    parameters = list(action.parameters.all())
    copy = RemoteAction.objects.get(pk=original_pk)
    copy.pk = None
    copy._state.adding = True
    copy.name = f"Copy of {action.name}"[:120]
    copy.slug = unique_slug(action.slug)
    copy.nexthink_uid = placeholder_uid()
    copy.enabled = False
    copy.featured = False
    copy.save()
    copy.groups.set(groups)
    copy.engines.set(engines)
    for param in parameters:
        param.pk = None
        param._state.adding = True
        param.action = copy
        param.save()  # one by one: the audit trail records each (bulk_create sends no signal)
    return copy


@transaction.atomic
def actions_set_enabled(actions: QuerySet[RemoteAction], enabled: bool) -> int:
    """Enable or disable these actions one by one, so that the audit trail records each change."""
    count = 0
    for action in actions.select_related(None).prefetch_related(None).select_for_update():
        action.enabled = enabled
        action.save(update_fields=["enabled", "updated_at"])
        count += 1
    return count


@admin.register(RemoteAction)
class RemoteActionAdmin(PlainTextAdmin, admin.ModelAdmin):
    form = RemoteActionAdminForm
    inlines = [ActionParameterInline]
    list_display = ["name", "kind", "category", "enabled", "featured", "display_order", "visible_to", "nexthink_uid"]
    list_display_links = ["name"]
    list_filter = ["enabled", "kind", "featured", "category", "groups"]
    search_fields = ["name", "slug", "summary", "description", "keywords", "nexthink_uid", "nql_id"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["groups", "engines"]

    class Media:
        js = ["js/admin-a11y.js"]  # names the two-list selectors' search icons for screen readers

    actions = ["enable_actions", "disable_actions", "duplicate_actions"]
    view_on_site = False  # the employee's page 404s for a disabled action; see "Preview employee form"
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "kind", "nexthink_uid", "nql_id", "enabled"]}),
        # Infinity's import sets them from Nexthink; on classic the curator does.
        ("Systems its script exists for", {"fields": [("runs_on_windows", "runs_on_macos")]}),
        (
            "In the catalog",
            {"fields": ["category", "icon", "display_order", "featured", "summary", "description", "keywords"]},
        ),
        ("Who may see and run it", {"fields": ["groups"]}),
        (
            "Running",
            {
                "fields": [
                    "confirmation_text",
                    "message_before",
                    "message_during",
                    "message_after",
                    "timeout_seconds",
                    "engines",
                ]
            },
        ),
        ("Limits", {"fields": ["cooldown_minutes", "daily_limit_per_user"]}),
        ("Approval", {"fields": ["approver_group", "approval_hours"]}),
        ("Service desk tickets", {"fields": ["ticket_category", "ticket_assignment_group"]}),
        ("History", {"classes": ["collapse"], "fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request) -> QuerySet[RemoteAction]:
        return super().get_queryset(request).select_related("category").prefetch_related("groups")

    @admin.display(description="who may see it")
    def visible_to(self, obj: RemoteAction) -> str:
        names = sorted(g.name for g in obj.groups.all())
        return ", ".join(names) if names else "Every employee"

    def get_urls(self):
        return [
            path(
                "<int:pk>/preview/",
                self.admin_site.admin_view(action_preview),
                name="actions_remoteaction_preview",
            ),
            path(
                "import-from-nexthink/",
                self.admin_site.admin_view(self.import_from_nexthink_view),
                name="actions_remoteaction_import_from_nexthink",
            ),
            *super().get_urls(),
        ]

    def _can_import(self, request) -> bool:
        return (
            settings.NEXTHINK_PLATFORM == "infinity"
            and self.has_add_permission(request)
            and self.has_change_permission(request)
        )

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_import_from_nexthink": self._can_import(request)}
        return super().changelist_view(request, extra_context)

    def import_from_nexthink_view(self, request):
        """POST: what `manage.py import_remote_actions` does; new actions arrive disabled."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self._can_import(request):
            raise PermissionDenied
        try:
            remote = infinity_client_from_settings().remote_actions()
        except ActApiError as exc:
            messages.error(request, f"Could not read Nexthink's remote actions: {exc.message}")
        else:
            report = remote_actions_import(remote)
            level = messages.WARNING if report.rejected else messages.SUCCESS
            self.message_user(request, f"Imported from Nexthink: {report.summary()}", level)
            if report.created:
                self.message_user(request, "New actions are disabled: set who may see them, then enable them.")
            for label, reason in report.rejected:
                self.message_user(request, f"Rejected {label}: {reason}", messages.WARNING)
        self._import_workflows(request)
        return HttpResponseRedirect(reverse("admin:actions_remoteaction_changelist"))

    def _import_workflows(self, request) -> None:
        """The workflows Nexthink lists for the API, as disabled catalog entries (kind "workflow")."""
        try:
            workflows = infinity_client_from_settings().workflows()
        except ActApiError as exc:
            messages.warning(request, f"Could not read Nexthink's workflows: {exc.message}")
            return
        report = workflows_import(workflows)
        level = messages.WARNING if report.rejected else messages.SUCCESS
        self.message_user(request, f"Workflows imported from Nexthink: {workflow_summary(report)}", level)
        for label, reason in report.rejected:
            self.message_user(request, f"Rejected workflow {label}: {reason}", messages.WARNING)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            context["preview_url"] = reverse("admin:actions_remoteaction_preview", args=[obj.pk])
            if is_placeholder_uid(obj.nexthink_uid):
                context["placeholder_uid"] = True
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    @admin.action(description="Enable selected actions", permissions=["change"])
    def enable_actions(self, request, queryset):
        placeholders = [a for a in queryset if is_placeholder_uid(a.nexthink_uid)]
        updated = actions_set_enabled(queryset.exclude(pk__in=[a.pk for a in placeholders]), True)
        self.message_user(request, f"Enabled {updated} action(s).", messages.SUCCESS)
        if placeholders:
            self.message_user(
                request,
                "Not enabled, their remote action UID is still a placeholder from “Duplicate”: "
                + ", ".join(a.name for a in placeholders),
                messages.WARNING,
            )

    @admin.action(description="Disable selected actions", permissions=["change"])
    def disable_actions(self, request, queryset):
        updated = actions_set_enabled(queryset, False)
        self.message_user(request, f"Disabled {updated} action(s).", messages.SUCCESS)

    @admin.action(description="Duplicate selected actions (as disabled copies)", permissions=["add"])
    def duplicate_actions(self, request, queryset):
        copies = [duplicate_action(action) for action in queryset.order_by("pk")]
        note = "Set each copy's real Nexthink remote action UID (a placeholder was given) before enabling it."
        if len(copies) == 1:
            copy = copies[0]
            self.message_user(request, format_html("Created the disabled copy “{}”. {}", copy.name, note))
            return HttpResponseRedirect(reverse("admin:actions_remoteaction_change", args=[copy.pk]))
        self.message_user(request, f"Created {len(copies)} disabled copies. {note}")
        return None
