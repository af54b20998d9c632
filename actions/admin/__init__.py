"""Django admin, one module per area."""

from actions.admin import catalog, devices, runs  # noqa: F401
