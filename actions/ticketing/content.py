"""A ticket's content, made from its run: everything IT needs, as text and as data."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from actions.models import Run
from actions.servicedesk.base import TicketContent

MAX_SHORT = 160


def ticket_content(run: Run, *, run_url: str, default_category: str = "") -> TicketContent:
    user = run.user
    action = run.action
    results = [
        {
            "engine": r.engine_name or r.database_uid,
            "database_uid": r.database_uid,
            "code": r.code,
            "message": r.message,
        }
        for r in run.engine_results.all()
    ]
    facts = {
        "run": {
            "id": str(run.pk),
            "url": run_url,
            "status": run.status,
            "status_label": run.get_status_display(),
            "created_at": run.created_at.isoformat() if run.created_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "attempts": run.attempts,
            "error_code": run.error_code,
            "error_message": run.error_message,
            "engine_results": results,
        },
        "employee": {
            "name": user.get_full_name(),
            "username": user.get_username(),
            "email": user.email,
        },
        "device": {"name": run.device_name, "uid": run.device_uid},
        "action": {"name": run.action_name, "uid": str(run.action_uid), "parameters": dict(run.params or {})},
        "feedback": {
            "fixed": run.fixed,
            "comment": run.feedback_comment,
            "answered_at": run.feedback_at.isoformat() if run.feedback_at else None,
        },
    }
    who = user.get_full_name() or user.get_username()
    short = f"{run.action_name} on {run.device_name or run.device_uid}: {_why(run)} ({who})"
    return TicketContent(
        short_description=short[:MAX_SHORT],
        description=_description(run, facts),
        facts=facts,
        category=(action.ticket_category if action else "") or default_category,
        assignment_group=action.ticket_assignment_group if action else "",
    )


def _why(run: Run) -> str:
    if run.fixed is False:
        return "did not fix the problem"
    if run.status == Run.Status.FAILED:
        return "not sent"
    if run.status == Run.Status.UNKNOWN:
        return "outcome unknown"
    return run.get_status_display().lower()


def _description(run: Run, facts: dict[str, Any]) -> str:
    employee, device, action, r = facts["employee"], facts["device"], facts["action"], facts["run"]
    lines = [
        f"Opened from the {settings.PORTAL_NAME} portal: the employee asked for help after running a remote action.",
        "",
        f"Employee: {employee['name'] or '-'} (user name {employee['username']}, e-mail {employee['email'] or '-'})",
        f"Device: {device['name'] or '-'} (Nexthink UID {device['uid']})",
        f"Action: {action['name']} (Nexthink UID {action['uid']})",
        "Parameters: "
        + (", ".join(f"{k}={v}" for k, v in action["parameters"].items()) if action["parameters"] else "none"),
        f"Run: {r['url']} (reference {r['id']})",
        f"Status: {r['status_label']} ({r['status']}), attempts {r['attempts']}",
    ]
    if r["error_code"] or r["error_message"]:
        lines.append(f"Error: {r['error_code'] or '-'}: {r['error_message'] or '-'}")
    lines.append("What each Nexthink Engine answered:")
    lines += [f"  - {e['engine']}: {e['code']} {e['message']}".rstrip() for e in r["engine_results"]] or ["  (none)"]
    fixed = {True: "yes", False: "no", None: "not answered"}[facts["feedback"]["fixed"]]
    lines.append(f"Did it fix the problem? {fixed}")
    lines.append(f"Employee's comment: {run.feedback_comment or '(none)'}")
    return "\n".join(lines)
