"""What happened to a run, as an outcome: pure functions of Engine answers, API errors, the device's
result, a refusal at send time, a crash or the reaper's verdict.

`Outcome` is the one place that turns what happened into a status, whether it counts towards the
cooldown and the daily limit, whether it is retried automatically, and the employee's words
(wording.py). Nothing here reads or writes the database; lifecycle.py applies an outcome.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import DateTimeField, ExpressionWrapper, Value
from django.db.models.functions import Now
from django.utils.translation import gettext_noop

from actions.models import Run, max_length
from actions.nexthink.classic.client import EngineAnswer, EngineCode
from actions.nexthink.errors import ActApiError, ErrorKind, what_happened
from actions.nexthink.platform import EXPIRED, FAILURE, SUCCESS, WAITING, DeviceResult, Sent
from actions.runs.states import COUNTED, Status
from actions.runs.wording import AGAIN_LATER, CHECK_DEVICE, CONTACT_IT, ENGINE_FAILURE_TEXT, NOT_READ_TEXT

# Model field lengths: whatever Nexthink sends is cut to fit, on PostgreSQL as on SQLite.
CODE_LENGTH = max_length(Run, "error_code")
MESSAGE_LENGTH = 2000


def clip(value: object, length: int) -> str:
    """Text from outside, safe to store: no NUL (PostgreSQL refuses it), at most `length` characters."""
    return str(value or "").replace("\x00", "")[:length]


# --- Moves ---------------------------------------------------------------------------------------


def in_seconds(seconds: float) -> ExpressionWrapper:
    """The database's now plus `seconds`, as an expression for an update."""
    return ExpressionWrapper(Now() + Value(timedelta(seconds=seconds)), output_field=DateTimeField())


@dataclass(frozen=True)
class Outcome:
    status: str
    code: str = ""  # stored on the run: the API's code, a transport reason, or the portal's own
    kind: str = ""  # an ErrorKind, or "" when Nexthink answered
    message: str = ""  # what the employee reads: what happened, then the one next step
    retry_in: float | None = None  # seconds until the automatic retry, when one is planned
    fields: dict = field(default_factory=dict)  # more of the run's fields to set with the move

    @property
    def counts(self) -> bool:
        """Does this run count towards the action's cooldown and daily limit?"""
        return self.status in COUNTED

    @property
    def retried(self) -> bool:
        return self.retry_in is not None


UNCERTAIN_ENGINE_CODES = {EngineCode.TIMEOUT, EngineCode.UNRECOGNISED}


def outcome_of_answers(answers: Sequence[EngineAnswer]) -> Outcome:
    """What the Engines' answers mean for the run.

    Any "ok": sent (all) or partial (some). None ok: if an Engine timed out or answered a code the
    portal does not know, nobody can tell whether the action will run: unknown (it counts, and the
    employee is told to check before running it again). Otherwise every Engine said it did not send
    the action: failed.
    """
    ok = sum(answer.ok for answer in answers)
    if answers and ok == len(answers):
        return Outcome(Status.SENT)
    if ok:
        return Outcome(Status.PARTIAL)
    uncertain = [answer for answer in answers if answer.code in UNCERTAIN_ENGINE_CODES]
    if uncertain:
        code = "ENGINE_TIMEOUT" if uncertain[0].code is EngineCode.TIMEOUT else "ENGINE_UNRECOGNISED"
        return Outcome(
            Status.UNKNOWN,
            code=code,
            kind=str(ErrorKind.UNKNOWN),
            message=gettext_noop(
                "Nexthink passed the action on but did not hear back in time, so the portal cannot tell whether it ran."
            )
            + " "
            + CHECK_DEVICE,
        )
    if not answers:
        return Outcome(
            Status.FAILED,
            code="NO_ENGINE_ANSWERED",
            kind=str(ErrorKind.PERMANENT),
            message=gettext_noop("No Nexthink server took the action.") + " " + CONTACT_IT,
        )
    first = answers[0].code
    permanent = all(answer.code in (EngineCode.EXCLUDED, EngineCode.NO_PERMISSION) for answer in answers)
    return Outcome(
        Status.FAILED,
        code="NO_ENGINE_OK",
        kind=str(ErrorKind.PERMANENT if permanent else ErrorKind.RETRYABLE),
        message=ENGINE_FAILURE_TEXT.get(
            first, gettext_noop("Nexthink did not send the action to your device.") + " " + AGAIN_LATER
        ),
    )


def outcome_of_sent(sent: Sent) -> Outcome:
    """What Nexthink's answer to a send means: each Engine's answer (classic), or a request whose
    device result the portal follows up (Infinity): "following", first look in a few seconds."""
    if not sent.request_id:
        return outcome_of_answers(sent.answers)
    return Outcome(
        Status.FOLLOWING,
        fields={
            "request_id": clip(sent.request_id, 64),
            "expires_at": in_seconds(sent.expires_in_minutes * 60),
            "next_check_at": in_seconds(FIRST_CHECK_SECONDS),
            "device_status": WAITING,
        },
    )


# The device's result is read back with a bounded, backed-off schedule: 5 s, 10 s, 20 s ... 5 min.
FIRST_CHECK_SECONDS = 5
MAX_CHECK_SECONDS = 300
# Nexthink may take a moment to record an execution as expired: look once more after this.
EXPIRY_GRACE_SECONDS = 300

# Nexthink's wait for the device (and the grace) is over and its result could not be read: the run ends.
NOT_READ = Outcome(Status.UNKNOWN, "RESULT_NOT_READ", str(ErrorKind.UNKNOWN), NOT_READ_TEXT)

DEVICE_FINAL = {
    SUCCESS: Status.DONE,
    FAILURE: Status.DEVICE_FAILED,
    EXPIRED: Status.EXPIRED,
}


def check_delay(checks: int) -> float:
    return min(MAX_CHECK_SECONDS, FIRST_CHECK_SECONDS * 2**checks)


def outcome_of_device_result(result: DeviceResult | None, *, expired: bool) -> Outcome | None:
    """A follow-up's reading: a final outcome, or None while the device has not finished.

    `expired`: Nexthink's wait for the device is over (plus a grace). Then a run still waiting is
    expired (the device never took it), and a run Nexthink still has no record of is unknown.
    """
    if result is not None and result.status in DEVICE_FINAL:
        return device_outcome(DEVICE_FINAL[result.status], result)
    if not expired:
        return None
    if result is None:
        return Outcome(Status.UNKNOWN, "NO_EXECUTION", str(ErrorKind.UNKNOWN), NOT_READ_TEXT)
    if result.status == WAITING:
        return device_outcome(Status.EXPIRED, result)
    return Outcome(
        Status.UNKNOWN,
        "DEVICE_NO_RESULT",
        str(ErrorKind.UNKNOWN),
        gettext_noop("Your device started the action but did not report how it ended.") + " " + CHECK_DEVICE,
    )


def device_outcome(status: str, result: DeviceResult) -> Outcome:
    messages: dict[str, str] = {
        Status.DONE: "",
        Status.DEVICE_FAILED: gettext_noop(
            "Your device ran the action, but it did not succeed. Run it again, or get help from IT."
        ),
        Status.EXPIRED: gettext_noop(
            "Your device did not come online in time, so the action never ran. Switch it on, connect "
            "it to the network, then run the action again."
        ),
    }
    return Outcome(
        status,
        code="" if status == Status.DONE else status.upper(),
        message=messages[status],
        fields=device_fields(result),
    )


def device_fields(result: DeviceResult) -> dict:
    return {
        "device_status": clip(result.status, 40),
        "device_status_details": clip(result.details, MESSAGE_LENGTH),
        "outputs": {clip(key, 100): clip(value, MESSAGE_LENGTH) for key, value in result.outputs.items()},
    }


def outcome_of_error(error: ActApiError, *, attempt: int, max_attempts: int) -> Outcome:
    """An API or transport failure: retried only when nothing can have been accepted."""
    happened = what_happened(error.reason)
    if error.kind is ErrorKind.UNKNOWN:
        return Outcome(Status.UNKNOWN, error.reason, str(error.kind), f"{happened} {CHECK_DEVICE}")
    if error.kind is ErrorKind.RETRYABLE and attempt < max_attempts:
        delay = max(retry_delay(attempt), error.retry_after or 0)
        return Outcome(Status.RETRYING, error.reason, str(error.kind), happened, retry_in=delay)
    if error.kind is ErrorKind.RETRYABLE:
        return Outcome(
            Status.FAILED,
            error.reason,
            str(error.kind),
            f"{happened} The portal tried {attempt} times. {AGAIN_LATER}",
        )
    return Outcome(Status.FAILED, error.reason, str(error.kind), f"{happened} {CONTACT_IT}")


def refused(code: str, message: str) -> Outcome:
    """The portal itself declined to send, at send time: nothing went out, and running it again will not help."""
    return Outcome(Status.FAILED, code, str(ErrorKind.PERMANENT), message)


def crashed(*, called: bool) -> Outcome:
    if called:
        return Outcome(
            Status.UNKNOWN,
            "PORTAL_ERROR",
            str(ErrorKind.UNKNOWN),
            gettext_noop(
                "The portal hit an internal problem after sending this, so it cannot tell whether the action ran."
            )
            + " "
            + CHECK_DEVICE,
        )
    return Outcome(
        Status.FAILED,
        "PORTAL_ERROR",
        str(ErrorKind.RETRYABLE),
        gettext_noop("The portal hit an internal problem before sending this.") + " " + AGAIN_LATER,
    )


WORKER_LOST = Outcome(
    Status.UNKNOWN,
    "WORKER_LOST",
    str(ErrorKind.UNKNOWN),
    gettext_noop("The portal lost track of this run while sending it, so it cannot tell whether the action ran.")
    + " "
    + CHECK_DEVICE,
)
NOT_SENT = Outcome(
    Status.FAILED,
    "NOT_SENT",
    str(ErrorKind.RETRYABLE),
    gettext_noop("The portal could not send this to Nexthink in time.") + " " + AGAIN_LATER,
)


def retry_delay(attempt: int) -> float:
    """Exponential backoff with jitter: attempt 1 waits half to all of the base, then doubles, capped."""
    ceiling = min(settings.RUN_RETRY_MAX_SECONDS, settings.RUN_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)
