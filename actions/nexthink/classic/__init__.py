"""Classic Nexthink: the Act API v2 and each Engine's NXQL API."""
