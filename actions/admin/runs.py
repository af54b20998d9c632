"""Admin for runs: read-only history, with a retry that makes a new, linked run."""

from django.contrib import admin, messages
from django.db import transaction

from actions.catalog.parameters import InvalidParams
from actions.models import EngineResult, Run, RunAttempt
from actions.runs.submit import RunRefused, run_submit


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


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("created_at", "action_name", "user", "device_name", "status", "attempts", "requested_by")
    list_filter = ("status", "action", ("user", admin.RelatedOnlyFieldListFilter), "created_at")
    search_fields = ("=id", "device_uid", "device_name", "user__username", "user__email", "action_name")
    search_help_text = "Request UID (exact), device UID or name, user name or e-mail, action name."
    date_hierarchy = "created_at"
    list_select_related = ("user", "requested_by")
    inlines = [EngineResultInline, RunAttemptInline]
    actions = ["retry_runs"]
    readonly_fields = [f.name for f in Run._meta.fields]
    fieldsets = (
        (
            None,
            {"fields": ("id", "status", "user", "requested_by", "retry_of", "created_at", "sending_at", "finished_at")},
        ),
        (
            "What was sent",
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
            "Progress",
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

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # the view permission shows the page; nothing on it may change

    @admin.action(description="Retry the selected failed or unknown runs (new runs, linked)", permissions=["retry"])
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
            self.message_user(request, f"{made} new run(s) queued.", messages.SUCCESS)
        if skipped:
            self.message_user(request, "Not retried: " + "; ".join(skipped), messages.WARNING)

    def has_retry_permission(self, request):
        # The permission dispatch checks for a run asked by IT: without it the new run would be refused.
        return request.user.has_perm("actions.run_action_on_any_device")
