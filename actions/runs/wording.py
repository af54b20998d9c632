"""Plain words for employees: what a run's status and each Engine's answer mean, and when.

The words are English here, marked for translation (gettext_noop), and translated where they are
shown (gettext), in the language of the request or of the e-mail (README "Languages"). A run keeps
its messages in English (IT reads them in the admin); translated_message shows one to the employee
in their language, sentence by sentence.
"""

from __future__ import annotations

import re
from datetime import datetime

from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext, gettext_noop, ngettext

from actions.catalog.parameters import parse_choices
from actions.models import ActionParameter, EngineResult, Run
from actions.nexthink.classic.client import EngineCode
from actions.runs.states import WENT_OUT, is_final

Status = Run.Status

ENGINE_CODE_TEXT = {
    "ok": gettext_noop(
        "Nexthink accepted the action for your device. It runs on the device shortly; this is not yet proof it finished."
    ),
    "timeout": gettext_noop(
        "This Nexthink server did not hear back in time, so the portal cannot tell whether the action will run."
    ),
    "engine_error": gettext_noop("This Nexthink server had a problem and did not send the action."),
    "not_connected": gettext_noop(
        "Your device isn't connected to Nexthink right now, so the action was not sent to it."
    ),
    "excluded": gettext_noop("This Nexthink server was not asked: Nexthink does not know it."),
    "no_permission": gettext_noop("The portal is not allowed to use this Nexthink server. IT needs to fix this."),
}

# The status in plain words: the badge on the run page and My runs, the tab's title, the e-mail. Each
# says where the run stands for the employee, and the sentence after it (status_summary) never repeats
# it. The model's own labels (Run.Status) stay the technical names IT reads in the admin.
STATUS_LABELS: dict[str, str] = {
    Status.QUEUED: gettext_noop("Waiting to be sent"),
    Status.SENDING: gettext_noop("Being sent"),
    Status.RETRYING: gettext_noop("Waiting to try again"),
    Status.SENT: gettext_noop("Accepted by Nexthink"),
    Status.PARTIAL: gettext_noop("Partly accepted by Nexthink"),
    Status.FAILED: gettext_noop("Not sent"),
    Status.UNKNOWN: gettext_noop("Result unknown"),
    Status.FOLLOWING: gettext_noop("Waiting for your device"),
    Status.DONE: gettext_noop("Done on your device"),
    Status.DEVICE_FAILED: gettext_noop("Failed on your device"),
    Status.EXPIRED: gettext_noop("Timed out: device offline"),
    Status.WAITING_APPROVAL: gettext_noop("Waiting for approval"),
    Status.DENIED: gettext_noop("Not approved"),
    Status.APPROVAL_EXPIRED: gettext_noop("Not approved in time"),
    Status.CANCELLED: gettext_noop("Cancelled"),
}


def status_label(status: str) -> str:
    return gettext(STATUS_LABELS[status]) if status in STATUS_LABELS else status


# What the device is doing, where the platform says (Nexthink Infinity).
DEVICE_STATUS_TEXT = {
    "waiting": gettext_noop("Nexthink runs it as soon as your device is online and takes it."),
    "in_progress": gettext_noop("Your device is running the action now."),
    "success": gettext_noop("Your device ran the action successfully."),
    "failure": gettext_noop("Your device ran the action, but it did not succeed."),
    "expired": gettext_noop("Your device did not come online in time; the action never ran."),
}


def device_status_text(run: Run) -> str:
    return gettext(DEVICE_STATUS_TEXT[run.device_status]) if run.device_status in DEVICE_STATUS_TEXT else ""


def engine_explanation(result: EngineResult) -> str:
    if result.code in ENGINE_CODE_TEXT:
        return gettext(ENGINE_CODE_TEXT[result.code])
    return gettext("Nexthink answered “%(code)s”, which the portal does not know.") % {"code": result.code}


def when_text(moment: datetime) -> str:
    """A moment as the site shows dates, in its time zone, with the zone named: "Nov. 29, 2026, 2:35 p.m. UTC".

    In the active language's own format ("29 novembre 2026 14:35 UTC")."""
    local = timezone.localtime(moment)
    return f"{date_format(local, 'DATETIME_FORMAT')} {local.tzname()}"


# A stored message is split into sentences; a number of attempts is the one part that varies.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
TRIED = re.compile(r"The portal tried (\d+) times\.")


def translated_message(message: str) -> str:
    """A run's stored message (English: the words outcomes.py, approvals.py and errors.py mark for
    translation, joined) in the active language: the longest runs of sentences that have a
    translation, each translated. A sentence nobody marked (Nexthink's own words) stays as it is."""
    if not message or (translation.get_language() or "en").split("-")[0] == "en":
        return message  # the words as stored
    if gettext(message) != message:
        return gettext(message)
    sentences = SENTENCE_END.split(message.strip())
    shown: list[str] = []
    start, changed = 0, False
    while start < len(sentences):
        for end in range(len(sentences), start, -1):
            piece = " ".join(sentences[start:end])
            tried = TRIED.fullmatch(piece)
            if tried:
                count = int(tried.group(1))
                text = ngettext("The portal tried %(count)d time.", "The portal tried %(count)d times.", count) % {
                    "count": count
                }
            else:
                text = gettext(piece)
            if text != piece or end == start + 1:
                changed = changed or text != piece
                shown.append(text)
                start = end
                break
    return " ".join(shown) if changed else message


def status_summary(run: Run) -> str:
    """What happened and the one next step, after the status label (never repeating it). A final run
    never promises more from the portal."""
    stored = translated_message(run.error_message)
    match run.status:
        case Status.QUEUED:
            return gettext("The portal sends it to Nexthink within a few seconds.")
        case Status.SENDING:
            return gettext("Nexthink's answer comes within a few seconds.")
        case Status.RETRYING:
            # How many attempts: in "Technical details", for IT.
            return f"{stored} {gettext('Nothing was sent yet; the portal tries again shortly.')}".strip()
        case Status.SENT:
            return gettext(
                "It should run on your device within a few minutes (the portal cannot see when it does). "
                "Then check whether your problem is gone."
            )
        case Status.PARTIAL:
            return gettext(
                "Some of Nexthink's servers took it and others did not; it should run on your device within a "
                "few minutes. Then check whether your problem is gone."
            )
        case Status.FAILED:
            return stored or gettext("Nexthink did not take the action, so nothing was sent. Please contact IT.")
        case Status.UNKNOWN:
            return stored or (gettext("The portal cannot tell whether the action ran.") + " " + gettext(CHECK_DEVICE))
        case Status.FOLLOWING:
            return device_status_text(run) or gettext(DEVICE_STATUS_TEXT["waiting"])
        case Status.DONE:
            return gettext("Your device ran the action successfully. Check whether your problem is gone.")
        case Status.DEVICE_FAILED | Status.EXPIRED:
            return stored
        case Status.WAITING_APPROVAL:
            waiting = gettext("IT approves this action before it runs; nothing has been sent yet.")
            if run.approval_expires_at:
                until = gettext("If nobody decides by %(when)s, the request ends.") % {
                    "when": when_text(run.approval_expires_at)
                }
                return f"{waiting} {until}"
            return waiting
        case Status.DENIED:
            denied = gettext("%(name)s did not approve it, so nothing was sent.") % {"name": decider_name(run)}
            return f"{denied}{comment_text(run)}"
        case Status.APPROVAL_EXPIRED | Status.CANCELLED:
            return stored
    return status_label(run.status)


def feedback_hint(run: Run) -> str:
    """What to do before answering "Did this fix your problem?"."""
    if run.status == Status.DONE:
        return gettext("Check whether the problem is gone, then tell us.")
    return gettext("Give it a few minutes to run on your device, then tell us.")


# The moment the run ended, named for what ended it: a run that was not sent never says "Sent".
ENDED_LABELS: dict[str, str] = {
    Status.SENT: gettext_noop("Accepted by Nexthink"),
    Status.PARTIAL: gettext_noop("Nexthink answered"),
    Status.FAILED: gettext_noop("Stopped trying"),
    Status.UNKNOWN: gettext_noop("Stopped following"),
    Status.DONE: gettext_noop("Done on your device"),
    Status.DEVICE_FAILED: gettext_noop("Failed on your device"),
    Status.EXPIRED: gettext_noop("Nexthink stopped waiting"),
    Status.DENIED: gettext_noop("Decided"),
    Status.APPROVAL_EXPIRED: gettext_noop("Approval ran out"),
    Status.CANCELLED: "Cancelled",
}


def run_times(run: Run) -> list[tuple[str, str]]:
    """The moments an employee reads, each with its time zone, each named for what it is in this status."""
    times = [(gettext("Requested"), when_text(run.created_at))]
    if run.sending_at and run.status in WENT_OUT:
        times.append((gettext("Sent to Nexthink"), when_text(run.sending_at)))
    if run.status == Status.FOLLOWING and run.expires_at:
        times.append((gettext("Nexthink waits for your device until"), when_text(run.expires_at)))
    if run.finished_at and is_final(run.status):
        ended = gettext(ENDED_LABELS[run.status]) if run.status in ENDED_LABELS else gettext("Ended")
        times.append((ended, when_text(run.finished_at)))
    return times


def technical_times(run: Run) -> list[tuple[str, str]]:
    """The portal's own stamps, for IT ("Technical details")."""
    return [
        (label, when_text(moment) if moment else gettext("not yet"))
        for label, moment in (
            (gettext("Created"), run.created_at),
            (gettext("Last send started"), run.sending_at),
            (gettext("Ended"), run.finished_at),
        )
    ]


def chosen_values(run: Run) -> list[tuple[str, str]]:
    """What the employee chose, under the form's labels and choices' names (not the script's names)."""
    if not run.params:
        return []  # nothing chosen: no need to read the action's parameters
    definitions = {param.name: param for param in run.action.parameters.all()} if run.action else {}
    empty = gettext("(empty)")
    chosen = []
    for name, value in run.params.items():
        param = definitions.get(name)
        if param is None:
            chosen.append((name, value or empty))
            continue
        shown = value
        if param.kind == ActionParameter.Kind.BOOLEAN:
            shown = gettext("Yes") if value == "true" else gettext("No")
        elif param.kind == ActionParameter.Kind.CHOICE:
            shown = dict(parse_choices(param.choices)).get(value, value)
        chosen.append((param.label or name, shown or empty))
    return chosen


def decider_name(run: Run) -> str:
    person = run.decided_by
    return (person.get_full_name() or person.get_username()) if person is not None else gettext("IT")


def comment_text(run: Run) -> str:
    if not run.decision_comment:
        return ""
    return " " + gettext("Their comment: “%(comment)s”") % {"comment": run.decision_comment}


LATE_TEXT = gettext_noop("This is taking longer than usual: the portal is still waiting to send it.")
LATE_MAIL_TEXT = gettext_noop("You can leave this page; you will get an e-mail when it ends.")
LATE_NO_MAIL_TEXT = gettext_noop("You can leave this page and come back to it later from My runs.")


def late_text(*, mailed: bool) -> str:
    """What a run page says about a run waiting to be sent far longer than usual."""
    return f"{gettext(LATE_TEXT)} {gettext(LATE_MAIL_TEXT if mailed else LATE_NO_MAIL_TEXT)}"


NO_RESULTS_YET = gettext_noop("No answer yet.")
NO_RESULTS_FINAL = gettext_noop("No Nexthink server answered for this run.")


NO_RESULTS_PER_SERVER = gettext_noop(
    "Nexthink answers for the whole request here (its request ID above), not per server."
)


def results_empty_text(run: Run) -> str:
    if run.request_id:
        return gettext(NO_RESULTS_PER_SERVER)
    return gettext(NO_RESULTS_FINAL if is_final(run.status) else NO_RESULTS_YET)


def status_title(run: Run) -> str:
    """The browser tab's title: the action and where it stands, kept current by the live page."""
    return f"{run.action_name}: {status_label(run.status)}"


# --- What an outcome says: what happened, then the one next step (outcomes.py) -------------------------
# Next steps, said once here so that every final page says the same. Stored in English with the run
# (outcomes.py): each sentence, or run of sentences, is marked here and translated when shown.
AGAIN_LATER = gettext_noop("Nothing was sent. Please run it again in a few minutes; if it keeps failing, contact IT.")
CONTACT_IT = gettext_noop("Nothing was sent. Please contact IT.")
CHECK_DEVICE = gettext_noop("Check your device: if the problem is still there, run it again.")

ENGINE_FAILURE_TEXT = {
    EngineCode.NOT_CONNECTED: gettext_noop(
        "Your device isn't connected to Nexthink right now, so the action was not sent to it. "
        "Switch it on and connect it to the network, then run it again."
    ),
    EngineCode.ENGINE_ERROR: gettext_noop("Nexthink had a problem and did not send the action to your device.")
    + " "
    + AGAIN_LATER,
    EngineCode.EXCLUDED: gettext_noop(
        "Nexthink did not send the action: it does not know the server your device reports to."
    )
    + " "
    + CONTACT_IT,
    EngineCode.NO_PERMISSION: gettext_noop(
        "Nexthink did not send the action: the portal may not use the server your device reports to."
    )
    + " "
    + CONTACT_IT,
}

NOT_READ_TEXT = (
    gettext_noop("Nexthink accepted the action, but the portal could not read what happened on your device.")
    + " "
    + CHECK_DEVICE
)
