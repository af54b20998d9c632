"""Plain words for employees: what a run's status and each Engine's answer mean."""

from __future__ import annotations

from actions.models import EngineResult, Run

Status = Run.Status

ENGINE_CODE_TEXT = {
    "ok": "Nexthink accepted the action for your device. It runs on the device shortly; this is not yet proof it finished.",
    "timeout": "This Nexthink server did not answer in time, so the portal cannot tell whether the action will run.",
    "engine_error": "This Nexthink server had a problem and did not send the action.",
    "not_connected": "Your device isn't connected to Nexthink right now. Switch it on, connect to the network, then try again.",
    "excluded": "This Nexthink server was not asked: Nexthink does not know it.",
    "no_permission": "The portal is not allowed to use this Nexthink server. IT needs to fix this.",
}


def engine_explanation(result: EngineResult) -> str:
    return ENGINE_CODE_TEXT.get(result.code, f"Nexthink answered “{result.code}”, which the portal does not know.")


def status_summary(run: Run) -> str:
    match run.status:
        case Status.QUEUED:
            return "Waiting to be sent to Nexthink. This usually takes a few seconds."
        case Status.SENDING:
            return "Sending to Nexthink and waiting for its answer."
        case Status.RETRYING:
            return (
                f"Nexthink could not be reached; retrying (attempt {run.attempts + 1} of {run.max_attempts}). "
                f"{run.error_message}"
            )
        case Status.SUCCEEDED:
            return "Sent. Nexthink accepted the action for your device; it runs there in the next few minutes."
        case Status.PARTIAL:
            return "Partly sent: some Nexthink servers accepted the action, others did not (see below)."
        case Status.FAILED:
            return run.error_message or "Nexthink did not accept the action (see below)."
        case Status.UNKNOWN:
            return (
                f"{run.error_message or 'The portal cannot tell whether the action ran.'} "
                "Check your device; if the problem is still there, run it again."
            ).strip()
    return run.get_status_display()
