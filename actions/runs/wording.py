"""Plain words for employees: what a run's status and each Engine's answer mean, and when."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.formats import date_format

from actions.catalog.parameters import parse_choices
from actions.models import ActionParameter, EngineResult, Run
from actions.nexthink.classic.client import EngineCode
from actions.runs.states import WENT_OUT, is_final

Status = Run.Status

ENGINE_CODE_TEXT = {
    "ok": "Nexthink accepted the action for your device. It runs on the device shortly; this is not yet proof it finished.",
    "timeout": "This Nexthink server did not hear back in time, so the portal cannot tell whether the action will run.",
    "engine_error": "This Nexthink server had a problem and did not send the action.",
    "not_connected": "Your device isn't connected to Nexthink right now, so the action was not sent to it.",
    "excluded": "This Nexthink server was not asked: Nexthink does not know it.",
    "no_permission": "The portal is not allowed to use this Nexthink server. IT needs to fix this.",
}

# The status in plain words: the badge on the run page and My runs, the tab's title, the e-mail. Each
# says where the run stands for the employee, and the sentence after it (status_summary) never repeats
# it. The model's own labels (Run.Status) stay the technical names IT reads in the admin.
STATUS_LABELS: dict[str, str] = {
    Status.QUEUED: "Waiting to be sent",
    Status.SENDING: "Being sent",
    Status.RETRYING: "Waiting to try again",
    Status.SENT: "Accepted by Nexthink",
    Status.PARTIAL: "Partly accepted by Nexthink",
    Status.FAILED: "Not sent",
    Status.UNKNOWN: "Result unknown",
    Status.FOLLOWING: "Waiting for your device",
    Status.DONE: "Done on your device",
    Status.DEVICE_FAILED: "Failed on your device",
    Status.EXPIRED: "Timed out: device offline",
    Status.WAITING_APPROVAL: "Waiting for approval",
    Status.DENIED: "Not approved",
    Status.APPROVAL_EXPIRED: "Not approved in time",
    Status.CANCELLED: "Cancelled",
}


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


# What the device is doing, where the platform says (Nexthink Infinity).
DEVICE_STATUS_TEXT = {
    "waiting": "Nexthink runs it as soon as your device is online and takes it.",
    "in_progress": "Your device is running the action now.",
    "success": "Your device ran the action successfully.",
    "failure": "Your device ran the action, but it did not succeed.",
    "expired": "Your device did not come online in time; the action never ran.",
}


def device_status_text(run: Run) -> str:
    return DEVICE_STATUS_TEXT.get(run.device_status, "")


def engine_explanation(result: EngineResult) -> str:
    return ENGINE_CODE_TEXT.get(result.code, f"Nexthink answered “{result.code}”, which the portal does not know.")


def when_text(moment: datetime) -> str:
    """A moment as the site shows dates, in its time zone, with the zone named: "Nov. 29, 2026, 2:35 p.m. UTC"."""
    local = timezone.localtime(moment)
    return f"{date_format(local, 'DATETIME_FORMAT')} {local.tzname()}"


def status_summary(run: Run) -> str:
    """What happened and the one next step, after the status label (never repeating it). A final run
    never promises more from the portal."""
    match run.status:
        case Status.QUEUED:
            return "The portal sends it to Nexthink within a few seconds."
        case Status.SENDING:
            return "Nexthink's answer comes within a few seconds."
        case Status.RETRYING:
            # How many attempts: in "Technical details", for IT.
            return f"{run.error_message} Nothing was sent yet; the portal tries again shortly.".strip()
        case Status.SENT:
            return (
                "It should run on your device within a few minutes (the portal cannot see when it does). "
                "Then check whether your problem is gone."
            )
        case Status.PARTIAL:
            return (
                "Some of Nexthink's servers took it and others did not; it should run on your device within a "
                "few minutes. Then check whether your problem is gone."
            )
        case Status.FAILED:
            return run.error_message or "Nexthink did not take the action, so nothing was sent. Please contact IT."
        case Status.UNKNOWN:
            return run.error_message or "The portal cannot tell whether the action ran. " + CHECK_DEVICE
        case Status.FOLLOWING:
            return device_status_text(run) or DEVICE_STATUS_TEXT["waiting"]
        case Status.DONE:
            return "Your device ran the action successfully. Check whether your problem is gone."
        case Status.DEVICE_FAILED | Status.EXPIRED:
            return run.error_message
        case Status.WAITING_APPROVAL:
            until = (
                f" If nobody decides by {when_text(run.approval_expires_at)}, the request ends."
                if run.approval_expires_at
                else ""
            )
            return f"IT approves this action before it runs; nothing has been sent yet.{until}"
        case Status.DENIED:
            return f"{decider_name(run)} did not approve it, so nothing was sent.{comment_text(run)}"
        case Status.APPROVAL_EXPIRED | Status.CANCELLED:
            return run.error_message
    return status_label(run.status)


def feedback_hint(run: Run) -> str:
    """What to do before answering "Did this fix your problem?"."""
    if run.status == Status.DONE:
        return "Check whether the problem is gone, then tell us."
    return "Give it a few minutes to run on your device, then tell us."


# The moment the run ended, named for what ended it: a run that was not sent never says "Sent".
ENDED_LABELS: dict[str, str] = {
    Status.SENT: "Accepted by Nexthink",
    Status.PARTIAL: "Nexthink answered",
    Status.FAILED: "Stopped trying",
    Status.UNKNOWN: "Stopped following",
    Status.DONE: "Done on your device",
    Status.DEVICE_FAILED: "Failed on your device",
    Status.EXPIRED: "Nexthink stopped waiting",
    Status.DENIED: "Decided",
    Status.APPROVAL_EXPIRED: "Approval ran out",
    Status.CANCELLED: "Cancelled",
}


def run_times(run: Run) -> list[tuple[str, str]]:
    """The moments an employee reads, each with its time zone, each named for what it is in this status."""
    times = [("Requested", when_text(run.created_at))]
    if run.sending_at and run.status in WENT_OUT:
        times.append(("Sent to Nexthink", when_text(run.sending_at)))
    if run.status == Status.FOLLOWING and run.expires_at:
        times.append(("Nexthink waits for your device until", when_text(run.expires_at)))
    if run.finished_at and is_final(run.status):
        times.append((ENDED_LABELS.get(run.status, "Ended"), when_text(run.finished_at)))
    return times


def technical_times(run: Run) -> list[tuple[str, str]]:
    """The portal's own stamps, for IT ("Technical details")."""
    return [
        (label, when_text(moment) if moment else "not yet")
        for label, moment in (
            ("Created", run.created_at),
            ("Last send started", run.sending_at),
            ("Ended", run.finished_at),
        )
    ]


def chosen_values(run: Run) -> list[tuple[str, str]]:
    """What the employee chose, under the form's labels and choices' names (not the script's names)."""
    if not run.params:
        return []  # nothing chosen: no need to read the action's parameters
    definitions = {param.name: param for param in run.action.parameters.all()} if run.action else {}
    chosen = []
    for name, value in run.params.items():
        param = definitions.get(name)
        if param is None:
            chosen.append((name, value or "(empty)"))
            continue
        shown = value
        if param.kind == ActionParameter.Kind.BOOLEAN:
            shown = "Yes" if value == "true" else "No"
        elif param.kind == ActionParameter.Kind.CHOICE:
            shown = dict(parse_choices(param.choices)).get(value, value)
        chosen.append((param.label or name, shown or "(empty)"))
    return chosen


def decider_name(run: Run) -> str:
    person = run.decided_by
    return (person.get_full_name() or person.get_username()) if person is not None else "IT"


def comment_text(run: Run) -> str:
    return f" Their comment: “{run.decision_comment}”" if run.decision_comment else ""


LATE_TEXT = "This is taking longer than usual: the portal is still waiting to send it."
LATE_MAIL_TEXT = "You can leave this page; you will get an e-mail when it ends."
LATE_NO_MAIL_TEXT = "You can leave this page and come back to it later from My runs."


def late_text(*, mailed: bool) -> str:
    """What a run page says about a run waiting to be sent far longer than usual."""
    return f"{LATE_TEXT} {LATE_MAIL_TEXT if mailed else LATE_NO_MAIL_TEXT}"


NO_RESULTS_YET = "No answer yet."
NO_RESULTS_FINAL = "No Nexthink server answered for this run."


NO_RESULTS_PER_SERVER = "Nexthink answers for the whole request here (its request ID above), not per server."


def results_empty_text(run: Run) -> str:
    if run.request_id:
        return NO_RESULTS_PER_SERVER
    return NO_RESULTS_FINAL if is_final(run.status) else NO_RESULTS_YET


def status_title(run: Run) -> str:
    """The browser tab's title: the action and where it stands, kept current by the live page."""
    return f"{run.action_name}: {status_label(run.status)}"


# --- What an outcome says: what happened, then the one next step (outcomes.py) -------------------------
# Next steps, said once here so that every final page says the same.
AGAIN_LATER = "Nothing was sent. Please run it again in a few minutes; if it keeps failing, contact IT."
CONTACT_IT = "Nothing was sent. Please contact IT."
CHECK_DEVICE = "Check your device: if the problem is still there, run it again."

ENGINE_FAILURE_TEXT = {
    EngineCode.NOT_CONNECTED: (
        "Your device isn't connected to Nexthink right now, so the action was not sent to it. "
        "Switch it on and connect it to the network, then run it again."
    ),
    EngineCode.ENGINE_ERROR: "Nexthink had a problem and did not send the action to your device. " + AGAIN_LATER,
    EngineCode.EXCLUDED: "Nexthink did not send the action: it does not know the server your device reports to. "
    + CONTACT_IT,
    EngineCode.NO_PERMISSION: "Nexthink did not send the action: the portal may not use the server your device "
    "reports to. " + CONTACT_IT,
}

NOT_READ_TEXT = (
    "Nexthink accepted the action, but the portal could not read what happened on your device. " + CHECK_DEVICE
)
