"""Admin for the catalog area."""
