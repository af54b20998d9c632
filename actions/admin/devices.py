"""Admin for the devices area."""
