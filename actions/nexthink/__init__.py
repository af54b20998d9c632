"""Everything that speaks to Nexthink: the Act API v2 client, its errors, and a simulator."""
