"""Service desk tickets: "Get help from IT" about a run (issue 12, item 3).

One module per backend (servicenow, webhook, mail), each with ``open_ticket(content, ticket) ->
Opened``; ``service`` owns the Ticket row's state; ``http`` is the one outbound HTTP seam of this
package; ``simulator`` is a ServiceNow-like Table API for the demo and the tests.
"""
