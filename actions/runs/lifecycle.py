"""The run lifecycle's writers: nothing else writes ``Run.status``.

Every move is one conditional update that names the statuses it leaves (states.py holds the table),
stamped with the database's clock: whichever worker, redelivered task or reaper pass gets there
first decides, and the others change nothing (and schedule nothing). Final statuses have no way
out: an answer that arrives after the reaper's verdict is logged and dropped. Every function here
changes state; the decisions they apply are pure functions in states.py and outcomes.py.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone

from actions import metrics
from actions.devices.engines import engine_names
from actions.models import EngineResult, Run, RunAttempt
from actions.nexthink.classic.client import EngineAnswer
from actions.nexthink.platform import DeviceResult
from actions.runs import watch
from actions.runs.outcomes import (
    CODE_LENGTH,
    MESSAGE_LENGTH,
    NOT_READ,
    Outcome,
    check_delay,
    clip,
    device_fields,
    in_seconds,
)
from actions.runs.states import FINAL, UNSENT, Status, check_move

# Moves that Prometheus hears of (actions/metrics.py): Nexthink accepted the run, or it ended.
OBSERVED = FINAL | {Status.FOLLOWING}

log = logging.getLogger("actions.runs")


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


def transition(
    run_id, to: str, *, leaving: Collection[str], where: Q | None = None, known: Run | None = None, **fields
) -> bool:
    """Move one run from one of `leaving` to `to` (if `where` holds too). False: nothing changed.

    A run that ends while its page is closed is mailed about by the reaper's pass (notify.runs_notify).
    `known`: the run as the caller read it, so that counting the move for Prometheus reads nothing.
    """
    moved = transition_many(Q(pk=run_id) & (where or Q()), to, leaving=leaving, **fields) == 1
    if not moved:
        log.info("run %s not moved to %s: another step decided first", run_id, to)
        return False
    watch.changed(run_id)  # the run page's next look gets the whole answer
    if to in OBSERVED:
        transaction.on_commit(lambda: _observe(run_id, to, known))
    return True


def _observe(run_id, to: str, known: Run | None) -> None:
    """Count a committed move for Prometheus; without the caller's run, one read of its name and start."""
    if known is not None:
        row: tuple | None = (known.action_name, known.created_at)
    else:
        row = Run.objects.filter(pk=run_id).values_list("action_name", "created_at").first()
    if row is not None:
        action, created_at = row
        metrics.run_moved(
            to=to,
            final=to in FINAL,
            action=action,
            platform=settings.NEXTHINK_PLATFORM,
            created_at=created_at,
            at=timezone.now(),
        )


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
    if outcome.retry_in is not None:  # outcome.retried
        fields["next_attempt_at"] = in_seconds(outcome.retry_in)
    with transaction.atomic():
        if not transition(run.pk, outcome.status, leaving=(Status.SENDING,), known=run, **fields):
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
            known=run,
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
    updated = (
        Run.objects.filter(pk=run.pk, status=Status.FOLLOWING).update(
            next_check_at=in_seconds(check_delay(run.checks)), checks=F("checks") + 1, **progress
        )
        == 1
    )
    if updated and progress:
        watch.changed(run.pk)  # the device's status or outputs, shown while it is followed
    return updated


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


# --- Approval: a run of an action that needs it waits, then is approved, refused or ends ---------


def approve(run_id, *, by, comment: str) -> bool:
    """waiting_approval → queued, for exactly one approver; stamped as handed to the broker, as submit does."""
    return transition(
        run_id,
        Status.QUEUED,
        leaving=(Status.WAITING_APPROVAL,),
        decided_by=by,
        decided_at=Now(),
        decision_comment=comment,
        enqueued_at=Now(),
    )


def end_waiting(run_id, to: str, *, by=None, comment: str = "", code: str = "", message: str = "", where=None) -> bool:
    """waiting_approval → denied, cancelled, approval_expired or failed (no longer allowed): never sent."""
    decided = {"decided_by": by, "decided_at": Now()} if by is not None else {}
    return transition(
        run_id,
        to,
        leaving=(Status.WAITING_APPROVAL,),
        where=where,
        decision_comment=comment,
        error_code=code,
        error_message=message,
        **decided,
    )
