"""Admin for service desk tickets: read-only, to see what was asked and what the service desk answered."""

from django.contrib import admin

from actions.models import Ticket


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("requested_at", "number", "state", "backend", "attempts", "run", "requested_by")
    list_filter = ("state", "backend", "requested_at")
    search_fields = ("number", "external_id", "=run__id", "requested_by__username", "requested_by__email")
    list_select_related = ("run", "requested_by")
    readonly_fields = [f.name for f in Ticket._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
