"""Django admin, one module per area."""

from django.conf import settings
from django.contrib import admin
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from actions.admin import apiclients, audit, catalog, devices, insights, runs, tickets  # noqa: F401


def _portal_staff_only(request) -> bool:
    """Superusers, and staff who hold a permission of this app (curators, IT support). Nobody else."""
    user = request.user
    return user.is_active and user.is_staff and (user.is_superuser or user.has_module_perms("actions"))


admin.site.has_permission = _portal_staff_only
admin.site.site_header = format_lazy(_("{portal}: IT admin"), portal=settings.PORTAL_NAME)
admin.site.site_title = format_lazy(_("{portal} admin"), portal=settings.PORTAL_NAME)
admin.site.index_title = _("Curate actions, devices and runs")
