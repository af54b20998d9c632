"""Admin for the runs area."""
