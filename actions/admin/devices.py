"""Admin for the devices area: Engines, devices, and IT support's "run an action on this device"."""

from __future__ import annotations

import logging

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from actions.admin.plain_text import PlainTextAdmin
from actions.catalog.forms import ActionRunForm
from actions.catalog.selectors import platform_rule
from actions.devices.engines import engines_sync
from actions.models import RUN_ON_ANY_DEVICE, Device, Engine, RemoteAction
from actions.nexthink.errors import ActApiError
from actions.platforms import offered
from actions.runs.submit import RunRefused, run_submit

security_log = logging.getLogger("actions.security")


@admin.register(Engine)
class EngineAdmin(PlainTextAdmin, admin.ModelAdmin):
    list_display = ["name", "database_uid", "address", "port", "nxql_port", "status", "last_synced_at", "device_count"]
    list_filter = ["status"]
    search_fields = ["name", "database_uid", "address"]
    readonly_fields = ["last_synced_at"]
    fields = ["name", "database_uid", "address", "port", "nxql_port", "status", "last_synced_at"]

    def get_readonly_fields(self, request, obj=None):
        # NXQL sends the portal's Nexthink credentials to this address: only superusers may point it
        # elsewhere; otherwise it comes from the List Engines API (sync).
        if request.user.is_superuser:
            return self.readonly_fields
        return [*self.readonly_fields, "address", "port", "nxql_port"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_device_count=Count("devices"))

    @admin.display(description=_("devices"), ordering="_device_count")
    def device_count(self, engine: Engine) -> int:
        return engine._device_count

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_sync": self.has_change_permission(request)}
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        return [
            path("sync/", self.admin_site.admin_view(self.sync_view), name="actions_engine_sync"),
            *super().get_urls(),
        ]

    def sync_view(self, request):
        """POST: update the Engines from the List Engines API now (as `manage.py sync_engines` does)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        try:
            result = engines_sync()
        except ActApiError as exc:
            messages.error(request, gettext("Could not list the Engines: %(error)s") % {"error": exc.message})
        else:
            if result.empty_answer:
                messages.warning(
                    request, gettext("Nexthink listed no Engine at all; the Engines were left as they are.")
                )
            else:
                messages.success(
                    request,
                    gettext(
                        "Engines synced: %(new)d new, %(updated)d updated, %(unchanged)d unchanged, "
                        "%(not_listed)d no longer listed."
                    )
                    % {
                        "new": len(result.created),
                        "updated": len(result.updated),
                        "unchanged": len(result.unchanged),
                        "not_listed": len(result.not_listed),
                    },
                )
        return HttpResponseRedirect(reverse("admin:actions_engine_changelist"))


class PlatformFilter(admin.SimpleListFilter):
    """The devices' platforms; a device whose platform nobody reported is "Not known" (Django's own
    filter shows it as a link with no text, which a screen reader cannot name)."""

    title = _("platform")
    parameter_name = "platform"
    NOT_KNOWN = "-"

    def lookups(self, request, model_admin):
        platforms = Device.objects.order_by("platform").values_list("platform", flat=True).distinct()
        return [(platform or self.NOT_KNOWN, platform or gettext("Not known")) for platform in platforms]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(platform="" if value == self.NOT_KNOWN else value)


@admin.register(Device)
class DeviceAdmin(PlainTextAdmin, admin.ModelAdmin):
    list_display = ["name", "uid", "owner", "engine", "platform", "last_seen_at", "source", "confirmed_at"]
    list_filter = ["source", PlatformFilter, "engine"]
    search_fields = ["name", "uid", "owner__username", "owner__email"]
    autocomplete_fields = ["owner", "engine"]
    list_select_related = ["owner", "engine"]
    readonly_fields = ["source", "confirmed_at"]
    fields = ["uid", "name", "owner", "engine", "platform", "last_seen_at", "source", "confirmed_at"]

    def save_model(self, request, obj: Device, form, change):
        # Assigning a device here is a directory assignment ("manual"), confirmed now.
        if not change or "owner" in form.changed_data:
            obj.source = Device.Source.MANUAL
            obj.confirmed_at = timezone.now()
        super().save_model(request, obj, form, change)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/run-action/",
                self.admin_site.admin_view(self.run_action_view),
                name="actions_device_run_action",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_run_action": request.user.has_perm(RUN_ON_ANY_DEVICE)}
        return super().change_view(request, object_id, form_url, extra_context)

    def run_action_view(self, request, object_id):
        """IT support: run an action on this device for its owner; the run records who asked."""
        if not request.user.has_perm(RUN_ON_ANY_DEVICE):
            raise PermissionDenied
        device = self.get_object(request, unquote(object_id))
        if device is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, device):
            raise PermissionDenied
        change_url = reverse("admin:actions_device_change", args=[device.pk])
        # Only the actions that run on the device's system (all of them for a system not known).
        actions = RemoteAction.objects.filter(platform_rule(offered([device.platform])), enabled=True).order_by("name")
        chosen = request.POST.get("action") if request.method == "POST" else request.GET.get("action")
        action = actions.filter(pk=chosen).first() if chosen and str(chosen).isdigit() else None
        form = None
        if action is not None and device.owner_id is not None:
            form = ActionRunForm(action, [device], data=request.POST if request.method == "POST" else None)
            if request.method == "POST" and form.is_valid():
                if form.cleaned_data["device"] != device.uid:
                    raise PermissionDenied  # the device is the one in the URL, nothing else
                try:
                    run = run_submit(
                        user=device.owner,
                        action=action,
                        device=device,
                        params=form.nexthink_params(),
                        idempotency_key=form.cleaned_data["idempotency_key"],
                        requested_by=request.user,
                    )
                except RunRefused as exc:
                    messages.error(request, str(exc))
                else:
                    security_log.info(
                        "staff_run staff=%s user=%s device=%s action=%s run=%s at=%s",
                        request.user.get_username(),
                        device.owner.get_username(),
                        device.uid,
                        action.nexthink_uid,
                        run.pk,
                        timezone.now().isoformat(),
                    )
                    messages.success(
                        request, format_html(gettext("“{}” queued on {}: {}"), action.name, device, _run_link(run))
                    )
                    return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Run an action on %(device)s") % {"device": device},
            "device": device,
            "change_url": change_url,
            "actions": actions,
            "action": action,
            "form": form,
        }
        return TemplateResponse(request, "admin/actions/device/run_action.html", context)


def _run_link(run):
    try:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:actions_run_change", args=[run.pk]),
            gettext("run %(id)s") % {"id": run.pk},
        )
    except NoReverseMatch:
        return gettext("run %(id)s") % {"id": run.pk}
