"""Admin for the catalog area: remote actions, their parameters, categories."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import slugify
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from actions.admin.plain_text import PlainTextAdmin
from actions.admin.two_lists import TwoListHelp
from actions.catalog.forms import ActionParameterAdminForm, ActionParameterFormSet, RemoteActionAdminForm
from actions.catalog.nexthink_import import remote_actions_import, workflow_summary, workflows_import
from actions.catalog.parameters import is_placeholder_uid, placeholder_uid
from actions.catalog.transfer import MAX_FILE_BYTES, catalog_export, catalog_file_read, catalog_import
from actions.models import ActionParameter, Category, RemoteAction
from actions.nexthink.errors import ActApiError
from actions.nexthink.infinity.client import infinity_client_from_settings
from actions.platforms import MACOS, WINDOWS, labels, runs_on
from actions.views.catalog import action_preview


class ActionParameterInline(PlainTextAdmin, admin.StackedInline):
    model = ActionParameter
    form = ActionParameterAdminForm
    formset = ActionParameterFormSet
    extra = 0
    fieldsets = [
        (None, {"fields": [("name", "label"), "help_text", ("kind", "required", "display_order")]}),
        (_("Values"), {"fields": ["default", "choices", ("max_length", "min_value", "max_value")]}),
        (_("Validation"), {"fields": [("regex", "regex_message")]}),
        (_("Systems whose script uses it"), {"fields": [("used_by_windows", "used_by_macos")]}),
    ]


class CategoryOrderForm(forms.ModelForm):
    """A row of the categories list: its order box is labelled with the category's name (a screen
    reader otherwise reads a row of unnamed number boxes)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "display_order" in self.fields:
            self.fields["display_order"].widget.attrs["aria-label"] = gettext("Display order of %(category)s") % {
                "category": self.instance.name
            }


@admin.register(Category)
class CategoryAdmin(PlainTextAdmin, admin.ModelAdmin):
    list_display = ["name", "display_order", "action_count"]
    list_editable = ["display_order"]
    search_fields = ["name"]

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, **{"form": CategoryOrderForm} | kwargs)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(action_count=Count("actions"))

    @admin.display(description=_("actions"), ordering="action_count")
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


class CatalogFileForm(forms.Form):
    file = forms.FileField(
        label=_("Catalog file"),
        help_text=_("A file saved with “Export the catalog” on this or another portal (JSON, at most 2 MB)."),
        widget=forms.ClearableFileInput(attrs={"accept": ".json,application/json"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(gettext("The file is larger than 2 MB: not a catalog export."))
        try:
            self.catalog = catalog_file_read(upload.read(MAX_FILE_BYTES + 1))
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return upload


class CatalogApplyForm(forms.Form):
    """The second step: the file's content as the dry run read it, sent back to be applied."""

    catalog = forms.CharField(widget=forms.HiddenInput, strip=False, max_length=MAX_FILE_BYTES)
    file_name = forms.CharField(widget=forms.HiddenInput, max_length=255)

    def clean_catalog(self):
        try:
            self.catalog = catalog_file_read(self.cleaned_data["catalog"].encode())
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return self.cleaned_data["catalog"]


def both_systems_in_catalog() -> bool:
    """Do the catalog's actions differ by system, some for Windows, some for macOS? (One small query.)"""
    combos = set(RemoteAction.objects.order_by().values_list("runs_on_windows", "runs_on_macos").distinct())
    return any(w for w, _ in combos) and any(m for _, m in combos) and len(combos) > 1


class RunsOnFilter(admin.SimpleListFilter):
    title = _("runs on")
    parameter_name = "runs_on"

    def lookups(self, request, model_admin):
        return [(WINDOWS, "Windows"), (MACOS, "macOS")]

    def queryset(self, request, queryset):
        if self.value() == WINDOWS:
            return queryset.filter(runs_on_windows=True)
        if self.value() == MACOS:
            return queryset.filter(runs_on_macos=True)
        return queryset


# What a catalog import may create, change and delete (an action's parameters are replaced).
IMPORT_PERMISSIONS = [
    "actions.add_remoteaction",
    "actions.change_remoteaction",
    "actions.add_actionparameter",
    "actions.change_actionparameter",
    "actions.delete_actionparameter",
    "actions.add_category",
    "actions.change_category",
]


@admin.register(RemoteAction)
class RemoteActionAdmin(TwoListHelp, PlainTextAdmin, admin.ModelAdmin):
    form = RemoteActionAdminForm
    inlines = [ActionParameterInline]
    list_display = ["name", "kind", "category", "enabled", "featured", "display_order", "visible_to", "nexthink_uid"]
    list_display_links = ["name"]
    list_filter = ["enabled", "kind", "featured", "category", "groups"]
    search_fields = ["name", "slug", "summary", "description", "keywords", "nexthink_uid", "nql_id"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["groups", "engines"]
    two_list_help = {
        "groups": _("The groups whose members may see and run it. None chosen: every employee."),
        "engines": _("The Engines it is sent to. None chosen: every Engine."),
    }

    actions = ["enable_actions", "disable_actions", "duplicate_actions"]
    view_on_site = False  # the employee's page 404s for a disabled action; see "Preview employee form"
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "kind", "nexthink_uid", "nql_id", "enabled"]}),
        # Infinity's import sets them from Nexthink; on classic the curator does.
        (_("Systems its script exists for"), {"fields": [("runs_on_windows", "runs_on_macos")]}),
        (
            _("In the catalog"),
            {"fields": ["category", "icon", "display_order", "featured", "summary", "description", "keywords"]},
        ),
        (_("Who may see and run it"), {"fields": ["groups"]}),
        (
            _("Running"),
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
        (_("Limits"), {"fields": ["cooldown_minutes", "daily_limit_per_user"]}),
        (_("Approval"), {"fields": ["approver_group", "approval_hours"]}),
        (_("Service desk tickets"), {"fields": ["ticket_category", "ticket_assignment_group"]}),
        (_("History"), {"classes": ["collapse"], "fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request) -> QuerySet[RemoteAction]:
        return super().get_queryset(request).select_related("category").prefetch_related("groups")

    def get_list_display(self, request):
        """The systems column and filter only where both systems' actions exist (else the same word on every row)."""
        if not self._both_systems(request):
            return self.list_display
        return [*self.list_display[:2], "systems", *self.list_display[2:]]

    def get_list_filter(self, request):
        if self._both_systems(request):
            return [*self.list_filter[:2], RunsOnFilter, *self.list_filter[2:]]
        return self.list_filter

    def _both_systems(self, request) -> bool:
        if not hasattr(request, "_both_systems"):  # asked for the columns, then the filters: one query
            request._both_systems = both_systems_in_catalog()
        return request._both_systems

    @admin.display(description=_("runs on"))
    def systems(self, obj: RemoteAction) -> str:
        return labels(runs_on(obj))

    @admin.display(description=_("who may see it"))
    def visible_to(self, obj: RemoteAction) -> str:
        names = sorted(g.name for g in obj.groups.all())
        return ", ".join(names) if names else gettext("Every employee")

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
            path(
                "export-catalog/",
                self.admin_site.admin_view(self.export_catalog_view),
                name="actions_remoteaction_export_catalog",
            ),
            path(
                "import-catalog/",
                self.admin_site.admin_view(self.import_catalog_view),
                name="actions_remoteaction_import_catalog",
            ),
            *super().get_urls(),
        ]

    def _can_import_catalog(self, request) -> bool:
        return request.user.has_perms(IMPORT_PERMISSIONS)

    def export_catalog_view(self, request):
        """POST: the whole catalog as a JSON file to download (import it with "Import a catalog file")."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        data = catalog_export(actor=request.user)
        response = HttpResponse(
            json.dumps(data, indent=2, ensure_ascii=False) + "\n", content_type="application/json; charset=utf-8"
        )
        name = f"catalog-{timezone.localdate():%Y-%m-%d}.json"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def import_catalog_view(self, request):
        """Upload a catalog file, see what it would change (a dry run), then apply it."""
        if not self._can_import_catalog(request):
            raise PermissionDenied
        upload_form, report, apply_form = CatalogFileForm(), None, None
        if request.method == "POST" and "apply" in request.POST:
            apply_form = CatalogApplyForm(request.POST)
            if apply_form.is_valid():
                name = apply_form.cleaned_data["file_name"]
                try:
                    report = catalog_import(apply_form.catalog, actor=request.user, file_name=name, dry_run=False)
                except ValueError as exc:
                    messages.error(request, str(exc))
                else:
                    level = messages.WARNING if report.rejected else messages.SUCCESS
                    self.message_user(
                        request,
                        gettext("Imported %(file)s: %(summary)s.") % {"file": name, "summary": report.summary()},
                        level,
                    )
                    for label, reason in report.rejected:
                        self.message_user(
                            request,
                            gettext("Rejected %(action)s: %(reason)s") % {"action": label, "reason": reason},
                            messages.WARNING,
                        )
                    return HttpResponseRedirect(reverse("admin:actions_remoteaction_changelist"))
            else:
                messages.error(request, gettext("The file could not be applied; choose it again."))
            apply_form = None
        elif request.method == "POST":
            upload_form = CatalogFileForm(request.POST, request.FILES)
            if upload_form.is_valid():
                upload = upload_form.cleaned_data["file"]
                try:
                    report = catalog_import(
                        upload_form.catalog, actor=request.user, file_name=upload.name, dry_run=True
                    )
                except ValueError as exc:
                    upload_form.add_error("file", str(exc))
                else:
                    text = json.dumps(upload_form.catalog, ensure_ascii=False)
                    apply_form = CatalogApplyForm(initial={"catalog": text, "file_name": upload.name[:255]})
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Import a catalog file"),
            "upload_form": upload_form,
            "report": report,
            "apply_form": apply_form,
            "max_megabytes": MAX_FILE_BYTES // 1_000_000,
        }
        return TemplateResponse(request, "admin/actions/remoteaction/import_catalog.html", context)

    def _can_import(self, request) -> bool:
        return (
            settings.NEXTHINK_PLATFORM == "infinity"
            and self.has_add_permission(request)
            and self.has_change_permission(request)
        )

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_import_from_nexthink": self._can_import(request),
            "can_import_catalog": self._can_import_catalog(request),
        }
        return super().changelist_view(request, extra_context)

    def import_from_nexthink_view(self, request):
        """POST: the actions and workflows Nexthink lists for the API, as catalog entries; new ones arrive disabled."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self._can_import(request):
            raise PermissionDenied
        try:
            remote = infinity_client_from_settings().remote_actions()
        except ActApiError as exc:
            messages.error(
                request, gettext("Could not read Nexthink's remote actions: %(error)s") % {"error": exc.message}
            )
        else:
            report = remote_actions_import(remote)
            level = messages.WARNING if report.rejected else messages.SUCCESS
            self.message_user(
                request, gettext("Imported from Nexthink: %(summary)s") % {"summary": report.summary()}, level
            )
            if report.created:
                self.message_user(request, gettext("New actions are disabled: set who may see them, then enable them."))
            for label, reason in report.rejected:
                self.message_user(
                    request,
                    gettext("Rejected %(action)s: %(reason)s") % {"action": label, "reason": reason},
                    messages.WARNING,
                )
        self._import_workflows(request)
        return HttpResponseRedirect(reverse("admin:actions_remoteaction_changelist"))

    def _import_workflows(self, request) -> None:
        """The workflows Nexthink lists for the API, as disabled catalog entries (kind "workflow")."""
        try:
            workflows = infinity_client_from_settings().workflows()
        except ActApiError as exc:
            messages.warning(
                request, gettext("Could not read Nexthink's workflows: %(error)s") % {"error": exc.message}
            )
            return
        report = workflows_import(workflows)
        level = messages.WARNING if report.rejected else messages.SUCCESS
        self.message_user(
            request,
            gettext("Workflows imported from Nexthink: %(summary)s") % {"summary": workflow_summary(report)},
            level,
        )
        for label, reason in report.rejected:
            self.message_user(
                request,
                gettext("Rejected workflow %(workflow)s: %(reason)s") % {"workflow": label, "reason": reason},
                messages.WARNING,
            )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            context["preview_url"] = reverse("admin:actions_remoteaction_preview", args=[obj.pk])
            if is_placeholder_uid(obj.nexthink_uid):
                context["placeholder_uid"] = True
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    @admin.action(description=_("Enable selected actions"), permissions=["change"])
    def enable_actions(self, request, queryset):
        placeholders = [a for a in queryset if is_placeholder_uid(a.nexthink_uid)]
        updated = actions_set_enabled(queryset.exclude(pk__in=[a.pk for a in placeholders]), True)
        self.message_user(
            request,
            ngettext("Enabled %(count)d action.", "Enabled %(count)d actions.", updated) % {"count": updated},
            messages.SUCCESS,
        )
        if placeholders:
            self.message_user(
                request,
                gettext("Not enabled, their remote action UID is still a placeholder from “Duplicate”: ")
                + ", ".join(a.name for a in placeholders),
                messages.WARNING,
            )

    @admin.action(description=_("Disable selected actions"), permissions=["change"])
    def disable_actions(self, request, queryset):
        updated = actions_set_enabled(queryset, False)
        self.message_user(
            request,
            ngettext("Disabled %(count)d action.", "Disabled %(count)d actions.", updated) % {"count": updated},
            messages.SUCCESS,
        )

    @admin.action(description=_("Duplicate selected actions (as disabled copies)"), permissions=["add"])
    def duplicate_actions(self, request, queryset):
        copies = [duplicate_action(action) for action in queryset.order_by("pk")]
        note = gettext("Set each copy's real Nexthink remote action UID (a placeholder was given) before enabling it.")
        if len(copies) == 1:
            copy = copies[0]
            self.message_user(request, format_html(gettext("Created the disabled copy “{}”. {}"), copy.name, note))
            return HttpResponseRedirect(reverse("admin:actions_remoteaction_change", args=[copy.pk]))
        self.message_user(
            request, gettext("Created %(count)d disabled copies. %(note)s") % {"count": len(copies), "note": note}
        )
        return None
