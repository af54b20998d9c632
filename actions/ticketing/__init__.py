"""Service desk tickets: "Get help from IT" about a run.

``service`` owns the Ticket row's state and hands each attempt to the configured transport in
actions/servicedesk/ (servicenow, webhook, mail), as plain values; ``content`` makes the ticket's
text and data from the run.
"""
