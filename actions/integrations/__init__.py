"""One module per outside system that is not Nexthink or a service desk: its only HTTP."""
