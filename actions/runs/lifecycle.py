"""The run lifecycle: a run's statuses, the moves allowed between them, and what every outcome means.

Nothing else writes ``Run.status``. Every move is a conditional update from the statuses allowed to
lead to the target, stamped with the database's clock: whichever worker, redelivered task or reaper
pass gets there first decides, and the others change nothing (and schedule nothing).

    queued ──claim──▶ sending ──answer──▶ sent | partial | failed | unknown
    retrying ─claim─┘    ├──retryable error──▶ retrying (at next_attempt_at)
                         └──accepted, the platform reports the device's result──▶ following
    following ──follow-up──▶ done | device_failed | expired | unknown
    following ──past Nexthink's expiry + grace, result unreadable (follow-up or reaper)──▶ unknown
    queued, retrying ──reaper: not sent in time──▶ failed
    sending ──reaper: worker lost──▶ unknown

Final statuses have no way out: an answer that arrives after the reaper's verdict is logged and
dropped. ``Outcome`` is the one place that turns what happened (Engine answers, an API error, a
refusal at send time, a crash, the reaper's verdict) into a status, whether it counts towards the
cooldown and the daily limit, whether it is retried automatically, and the employee's words.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Now
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from actions.models import Engine, EngineResult, Run, RunAttempt
from actions.nexthink.client import EngineAnswer, EngineCode
from actions.nexthink.errors import ActApiError, ErrorKind, what_happened
from actions.nexthink.platform import EXPIRED, FAILURE, SUCCESS, WAITING, DeviceResult, Sent
from actions.runs import notify

log = logging.getLogger("actions.runs")
Status = Run.Status

TRANSITIONS: dict[str, frozenset[str]] = {
    Status.QUEUED: frozenset({Status.SENDING, Status.FAILED}),
    Status.RETRYING: frozenset({Status.SENDING, Status.FAILED}),
    Status.SENDING: frozenset(
        {Status.RETRYING, Status.SENT, Status.PARTIAL, Status.FAILED, Status.UNKNOWN, Status.FOLLOWING}
    ),
    Status.FOLLOWING: frozenset({Status.DONE, Status.DEVICE_FAILED, Status.EXPIRED, Status.UNKNOWN}),
    Status.SENT: frozenset(),
    Status.PARTIAL: frozenset(),
    Status.FAILED: frozenset(),
    Status.UNKNOWN: frozenset(),
    Status.DONE: frozenset(),
    Status.DEVICE_FAILED: frozenset(),
    Status.EXPIRED: frozenset(),
}
FINAL = frozenset(status for status, targets in TRANSITIONS.items() if not targets)
IN_FLIGHT = frozenset({Status.QUEUED, Status.SENDING, Status.RETRYING})
# Final runs whose employee is offered help from IT (with an answer "No" to "Did this fix it?", any
# final run): nothing was sent, nobody can tell what happened, or it failed or never ran on the device.
NEEDS_HELP = frozenset({Status.FAILED, Status.UNKNOWN, Status.DEVICE_FAILED, Status.EXPIRED})
# Nexthink accepted the action for the device (on at least one Engine), or the device did it: the
# employee is asked whether it fixed their problem.
REACHED_DEVICE = frozenset({Status.SENT, Status.PARTIAL, Status.DONE})
# Counted towards the cooldown and the daily limit: whatever may reach or may have reached the
# device. Only a run that was not sent, or that expired before the device took it, surely did not run.
COUNTED = frozenset(TRANSITIONS) - {Status.FAILED, Status.EXPIRED}

# Model field lengths: whatever Nexthink sends is cut to fit, on PostgreSQL as on SQLite.
CODE_LENGTH = Run._meta.get_field("error_code").max_length
MESSAGE_LENGTH = 2000


def clip(value: object, length: int) -> str:
    """Text from outside, safe to store: no NUL (PostgreSQL refuses it), at most `length` characters."""
    return str(value or "").replace("\x00", "")[:length]


# --- Moves ---------------------------------------------------------------------------------------


def check_move(leaving: Collection[str], to: str) -> None:
    """Refuse, as a programming error, a move whose sources are not named or not allowed by TRANSITIONS."""
    if to not in TRANSITIONS:
        raise ValueError(f"unknown status {to!r}")
    if isinstance(leaving, str) or not leaving:
        raise ValueError(f"a move to {to!r} must name the statuses it leaves")
    wrong = sorted(str(status) for status in leaving if to not in TRANSITIONS.get(status, ()))
    if wrong:
        raise ValueError(f"no move from {', '.join(wrong)} to {to!r}")


def transition_many(runs: Q, to: str, *, leaving: Collection[str], **fields) -> int:
    """Move every run matching `runs` whose status is one of `leaving` to `to`; returns how many moved.

    Every caller names the statuses it knows it may take a run from: the reaper's "not sent in
    time" can then never catch a run a worker claimed a moment earlier. Stamps ``sending_at`` or
    ``finished_at`` with the database's clock.
    """
    check_move(leaving, to)
    stamped = dict(fields)
    if to == Status.SENDING:
        stamped.setdefault("sending_at", Now())
    if to in FINAL:
        stamped.setdefault("finished_at", Now())
    return Run.objects.filter(runs, status__in=list(leaving)).update(status=to, **stamped)


def transition(run_id, to: str, *, leaving: Collection[str], where: Q | None = None, **fields) -> bool:
    """Move one run from one of `leaving` to `to` (if `where` holds too). False: nothing changed.

    A run that ends is followed up: its employee hears of it if they left its page (notify.py).
    """
    moved = transition_many(Q(pk=run_id) & (where or Q()), to, leaving=leaving, **fields) == 1
    if not moved:
        log.info("run %s not moved to %s: another step decided first", run_id, to)
    elif to in FINAL:
        notify.schedule(run_id)
    return moved


UNSENT = (Status.QUEUED, Status.RETRYING)


def claim(run_id) -> bool:
    """queued/retrying → sending, for exactly one caller, and not before a retry is due."""
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=Now())
    return transition(run_id, Status.SENDING, leaving=UNSENT, where=due, attempts=F("attempts") + 1)


def database_now() -> datetime:
    """The database's clock, so that every worker and the reaper compare times against one clock."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")
            return datetime.fromisoformat(cursor.fetchone()[0]).replace(tzinfo=UTC)
        cursor.execute("SELECT CURRENT_TIMESTAMP")
        return cursor.fetchone()[0]


def in_seconds(seconds: float) -> ExpressionWrapper:
    """The database's now plus `seconds`, as an expression for an update."""
    return ExpressionWrapper(Now() + Value(timedelta(seconds=seconds)), output_field=DateTimeField())


# --- Outcomes ------------------------------------------------------------------------------------


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
            message="Nexthink passed the action on but did not hear back in time, so the portal cannot tell "
            "whether it ran. " + CHECK_DEVICE,
        )
    if not answers:
        return Outcome(
            Status.FAILED,
            code="NO_ENGINE_ANSWERED",
            kind=str(ErrorKind.PERMANENT),
            message="No Nexthink server took the action. " + CONTACT_IT,
        )
    first = answers[0].code
    permanent = all(answer.code in (EngineCode.EXCLUDED, EngineCode.NO_PERMISSION) for answer in answers)
    return Outcome(
        Status.FAILED,
        code="NO_ENGINE_OK",
        kind=str(ErrorKind.PERMANENT if permanent else ErrorKind.RETRYABLE),
        message=ENGINE_FAILURE_TEXT.get(first, "Nexthink did not send the action to your device. " + AGAIN_LATER),
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

NOT_READ_TEXT = (
    "Nexthink accepted the action, but the portal could not read what happened on your device. " + CHECK_DEVICE
)
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
        "Your device started the action but did not report how it ended. " + CHECK_DEVICE,
    )


def device_outcome(status: str, result: DeviceResult) -> Outcome:
    messages = {
        Status.DONE: "",
        Status.DEVICE_FAILED: "Your device ran the action, but it did not succeed. Run it again, or get help from IT.",
        Status.EXPIRED: "Your device did not come online in time, so the action never ran. Switch it on, connect "
        "it to the network, then run the action again.",
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
            "The portal hit an internal problem after sending this, so it cannot tell whether the action ran. "
            + CHECK_DEVICE,
        )
    return Outcome(
        Status.FAILED,
        "PORTAL_ERROR",
        str(ErrorKind.RETRYABLE),
        "The portal hit an internal problem before sending this. " + AGAIN_LATER,
    )


WORKER_LOST = Outcome(
    Status.UNKNOWN,
    "WORKER_LOST",
    str(ErrorKind.UNKNOWN),
    "The portal lost track of this run while sending it, so it cannot tell whether the action ran. " + CHECK_DEVICE,
)
NOT_SENT = Outcome(
    Status.FAILED,
    "NOT_SENT",
    str(ErrorKind.RETRYABLE),
    "The portal could not send this to Nexthink in time. " + AGAIN_LATER,
)


def retry_delay(attempt: int) -> float:
    """Exponential backoff with jitter: attempt 1 waits half to all of the base, then doubles, capped."""
    ceiling = min(settings.RUN_RETRY_MAX_SECONDS, settings.RUN_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


# --- Recording a dispatch ------------------------------------------------------------------------


def record(run: Run, outcome: Outcome, answers: Iterable[EngineAnswer] = ()) -> bool:
    """Apply a dispatch's outcome: the run's move, its Engine results and its attempt, in one transaction.

    False when the run had already been decided (the reaper marked it unknown meanwhile): then
    nothing is stored and nothing is scheduled; the late outcome is only logged.
    """
    answers = list(answers)
    fields = {
        "error_code": clip(outcome.code, CODE_LENGTH),
        "error_kind": outcome.kind,
        "error_message": clip(outcome.message, MESSAGE_LENGTH),
        **outcome.fields,
    }
    if outcome.retried:
        fields["next_attempt_at"] = in_seconds(outcome.retry_in)
    with transaction.atomic():
        if not transition(run.pk, outcome.status, leaving=(Status.SENDING,), **fields):
            log.warning(
                "run %s: late outcome %s dropped (%s); answers: %s",
                run.pk,
                outcome.status,
                outcome.code or "-",
                ", ".join(f"{a.database_uid[:32]}={a.raw_code[:40]!r}" for a in answers) or "-",
            )
            return False
        if answers:
            _store_answers(run, answers)
        log_attempt(
            run.pk,
            number=run.attempts,
            started_at=run.sending_at,
            outcome="answered" if answers else outcome.kind or outcome.status,
            error_code=fields["error_code"],
            error_message=fields["error_message"],
        )
    log.info(
        "run %s %s%s%s",
        run.pk,
        outcome.status,
        f" ({outcome.code})" if outcome.code else "",
        f", next attempt in {outcome.retry_in:.1f} s" if outcome.retried else "",
    )
    return True


def record_follow_up(run: Run, outcome: Outcome | None, result: DeviceResult | None) -> bool:
    """Apply a follow-up's reading: the device's final result, or the next look when it has none yet.

    False when the run was no longer being followed (another reading decided first).
    """
    if outcome is not None:
        moved = transition(
            run.pk,
            outcome.status,
            leaving=(Status.FOLLOWING,),
            error_code=clip(outcome.code, CODE_LENGTH),
            error_kind=outcome.kind,
            error_message=clip(outcome.message, MESSAGE_LENGTH),
            next_check_at=None,
            **outcome.fields,
        )
        if moved:
            log.info("run %s %s on the device", run.pk, outcome.status)
        return moved
    progress = device_fields(result) if result is not None else {}
    return (
        Run.objects.filter(pk=run.pk, status=Status.FOLLOWING).update(
            next_check_at=in_seconds(check_delay(run.checks)), checks=F("checks") + 1, **progress
        )
        == 1
    )


def end_unread(run_id) -> bool:
    """following → unknown: Nexthink's wait for the device is over and its result could not be read
    (the read failed, or no follow-up read it in time). False: the run was no longer being followed."""
    moved = transition(
        run_id,
        NOT_READ.status,
        leaving=(Status.FOLLOWING,),
        error_code=NOT_READ.code,
        error_kind=NOT_READ.kind,
        error_message=NOT_READ.message,
        next_check_at=None,
    )
    if moved:
        log.warning("run %s unknown: the device's result could not be read before Nexthink's wait was over", run_id)
    return moved


def log_attempt(run_id, **fields) -> None:
    """One line of the run's attempt log, written when the attempt ends (with the run's move)."""
    RunAttempt.objects.create(run_id=run_id, finished_at=Now(), **fields)


def _store_answers(run: Run, answers: list[EngineAnswer]) -> None:
    names = engine_names({answer.database_uid for answer in answers})
    EngineResult.objects.bulk_create(
        EngineResult(
            run=run,
            database_uid=clip(answer.database_uid, 64),
            engine_name=clip(names.get(answer.database_uid, ""), 200),
            code=clip(answer.raw_code, 100),
            message=clip(answer.message, MESSAGE_LENGTH),
        )
        for answer in answers
    )


ENGINE_NAMES_SECONDS = 300
ENGINE_NAMES_KEY = "lifecycle-engine-names"


def engine_names(uids: set[str]) -> dict[str, str]:
    """Engine names by database UID, read once per ENGINE_NAMES_SECONDS per process (and for a UID not
    seen yet): a name is only a label stored beside each answer, and Engines are seldom renamed.
    A change saved in this process is seen at once (forget_engine_names, on Engine's signals)."""
    names = cache.get(ENGINE_NAMES_KEY)
    if names is None or not uids <= names.keys():
        names = dict(Engine.objects.values_list("database_uid", "name"))
        cache.set(ENGINE_NAMES_KEY, names, ENGINE_NAMES_SECONDS)
    return names


@receiver([post_save, post_delete], sender=Engine)
def forget_engine_names(**_kwargs) -> None:
    cache.delete(ENGINE_NAMES_KEY)


def reap(run_id, verdict: Outcome, *, leaving: Collection[str], where: Q | None = None) -> bool:
    """The reaper's verdict on a run, if it is still in one of `leaving` (and `where` holds)."""
    return transition(
        run_id,
        verdict.status,
        leaving=leaving,
        where=where,
        error_code=verdict.code,
        error_kind=verdict.kind,
        error_message=verdict.message,
    )
