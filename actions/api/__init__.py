"""The integration API (/api/v1/): service desks and chat assistants act for an employee, under the
employee's rules. An entry point: it parses, calls the same domain functions as the browser path
(actions.runs.submit, actions.runs.feedback, actions.ticketing.service) and renders."""
