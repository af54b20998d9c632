"""Plain words for employees: what a run's status and each Engine's answer mean, and when."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.formats import date_format

from actions.models import EngineResult, Run
from actions.nexthink.classic.client import EngineCode
from actions.runs.states import is_final

Status = Run.Status

ENGINE_CODE_TEXT = {
    "ok": "Nexthink accepted the action for your device. It runs on the device shortly; this is not yet proof it finished.",
    "timeout": "This Nexthink server did not hear back in time, so the portal cannot tell whether the action will run.",
    "engine_error": "This Nexthink server had a problem and did not send the action.",
    "not_connected": "Your device isn't connected to Nexthink right now, so the action was not sent to it.",
    "excluded": "This Nexthink server was not asked: Nexthink does not know it.",
    "no_permission": "The portal is not allowed to use this Nexthink server. IT needs to fix this.",
}

# The browser tab's title and the page's heading for each status.
STATUS_TITLES: dict[str, str] = {
    Status.QUEUED: "Waiting to be sent",
    Status.SENDING: "Sending",
    Status.RETRYING: "Retrying",
    Status.SENT: "Sent",
    Status.PARTIAL: "Partly sent",
    Status.FAILED: "Not sent",
    Status.UNKNOWN: "Outcome unknown",
    Status.FOLLOWING: "Sent, waiting for the device",
    Status.DONE: "Done on the device",
    Status.DEVICE_FAILED: "Failed on the device",
    Status.EXPIRED: "Expired",
    Status.WAITING_APPROVAL: "Waiting for approval",
    Status.DENIED: "Not approved",
    Status.APPROVAL_EXPIRED: "Not approved in time",
    Status.CANCELLED: "Cancelled",
}

# What the device is doing, where the platform says (Nexthink Infinity).
DEVICE_STATUS_TEXT = {
    "waiting": "Waiting for your device to come online and take the action.",
    "in_progress": "Your device is running the action.",
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
    """What happened and the one next step. A final run never promises more from the portal."""
    match run.status:
        case Status.QUEUED:
            return "Waiting to be sent to Nexthink. This usually takes a few seconds."
        case Status.SENDING:
            return "Sending to Nexthink and waiting for its answer."
        case Status.RETRYING:
            return (
                f"{run.error_message} Nothing was sent yet; the portal tries again shortly "
                f"(attempt {run.attempts + 1} of {run.max_attempts})."
            ).strip()
        case Status.SENT:
            return (
                "Sent. Nexthink accepted the action for your device; it runs there in the next few minutes. "
                "Wait a few minutes, then check whether your problem is gone."
            )
        case Status.PARTIAL:
            return (
                "Partly sent: some Nexthink servers accepted the action, others did not (see below). "
                "Wait a few minutes, then check whether your problem is gone."
            )
        case Status.FAILED:
            return run.error_message or "Nexthink did not accept the action, so nothing was sent (see below)."
        case Status.UNKNOWN:
            return run.error_message or "The portal cannot tell whether the action ran. Check your device."
        case Status.FOLLOWING:
            return f"Sent. Nexthink accepted the action. {device_status_text(run)}".strip()
        case Status.DONE:
            return "Done: your device ran the action. Check whether your problem is gone."
        case Status.DEVICE_FAILED | Status.EXPIRED:
            return run.error_message
        case Status.WAITING_APPROVAL:
            until = (
                f" If nobody decides by {when_text(run.approval_expires_at)}, it ends."
                if run.approval_expires_at
                else ""
            )
            return f"Waiting for approval: IT approves this action before it runs. Nothing has been sent yet.{until}"
        case Status.DENIED:
            return f"Not approved by {decider_name(run)}, so nothing was sent.{comment_text(run)}"
        case Status.APPROVAL_EXPIRED | Status.CANCELLED:
            return run.error_message
    return run.get_status_display()


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


def results_empty_text(run: Run) -> str:
    return NO_RESULTS_FINAL if is_final(run.status) else NO_RESULTS_YET


def status_title(run: Run) -> str:
    """The browser tab's title: the action and where it stands, kept current by the live page."""
    return f"{run.action_name}: {STATUS_TITLES.get(run.status, run.get_status_display())}"


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
