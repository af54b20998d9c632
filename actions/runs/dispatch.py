"""Dispatching a run: hand it to the broker, then (in a worker) claim it, re-check it and call Nexthink once."""

from __future__ import annotations

import logging
import uuid

from django.db import connection
from django.db.models.functions import Now
from django.utils.translation import gettext_noop

from actions import broker, metrics
from actions.compiled import compiled_instances, joined_columns
from actions.models import RUN_ON_ANY_DEVICE, Run
from actions.nexthink import platform
from actions.nexthink.errors import ActApiError
from actions.platforms import fits
from actions.runs import lifecycle, outcomes
from actions.runs.outcomes import Outcome
from actions.runs.selectors import visible_and_owned
from actions.security import security_event

log = logging.getLogger("actions.runs")


def run_enqueue(*, run_id, countdown: float | None = None, stamp: bool = True) -> bool:
    """Hand the run to the broker; False (and a log line) when the broker cannot be reached.

    `stamp`: note when (`enqueued_at`); submit writes it with the run instead.
    """
    if not broker.try_send("actions.tasks.dispatch_run", str(run_id), countdown=countdown, what=f"run {run_id}"):
        # The run stays stored, and no message carries it: the reaper's next pass after the broker
        # is back hands it over.
        Run.objects.filter(pk=run_id).update(enqueued_at=None)
        return False
    if stamp:
        Run.objects.filter(pk=run_id).update(enqueued_at=Now())
    return True


def run_dispatch(*, run_id) -> Outcome | None:
    """Send a run to Nexthink once. None when another worker has it, it is not due, or it was decided meanwhile.

    Three queries before the call (the claim, the run, its send-time re-checks), one right before it
    (still_ours: on Infinity the token may have taken long, and the reaper may have decided meanwhile)
    and one transaction after it: the attempt is written with its outcome (a worker that dies mid-call
    leaves the run in "sending", which the reaper marks unknown and logs as an attempt).
    """
    if not lifecycle.claim(run_id):
        return None
    [run] = compiled_instances(Run, _run_to_send, uuid.UUID(str(run_id)), related=SEND_RELATED)
    metrics.queue_waited(queue="runs", handed_at=run.enqueued_at, due_at=run.next_attempt_at, taken_at=run.sending_at)
    log.info("run %s sending attempt %s of %s", run.pk, run.attempts, run.max_attempts)
    answers = []
    called = False
    try:
        refusal = still_allowed(run)
        if refusal:
            outcome = outcomes.refused(*refusal)
        else:
            release_db_connection()
            called = True
            try:
                sent = platform.current().send(send_of(run), still_ours=lambda: still_ours(run))
            except platform.NotOurs:
                # The reaper decided while the token was fetched: nothing was sent, its verdict stands.
                log.warning("run %s: no longer attempt %s's to send; nothing sent", run.pk, run.attempts)
                return None
            except ActApiError as error:
                outcome = outcomes.outcome_of_error(error, attempt=run.attempts, max_attempts=run.max_attempts)
            else:
                answers = list(sent.answers)
                outcome = outcomes.outcome_of_sent(sent)
        recorded = lifecycle.record(run, outcome, answers)
    except Exception:
        # A bug or a database error must not leave the run in "sending" for the reaper to misname.
        log.exception("run %s: unexpected error while dispatching", run.pk)
        outcome = outcomes.crashed(called=called)
        recorded = lifecycle.record(run, outcome)
    return outcome if recorded else None


# What the send and its re-checks read with the run: one query, compiled once per process.
SEND_RELATED = ("action", "device", "user", "requested_by")


def _run_to_send(run_id: uuid.UUID):
    return Run.objects.filter(pk=run_id).values_list(*joined_columns(Run, SEND_RELATED))


def send_of(run: Run) -> platform.Send:
    """The run, as the platform sends it: what was snapshot at submit, and who asked (Nexthink's audit)."""
    employee = run.user.get_full_name() or run.user.get_username()
    reason = f"Requested by {employee} ({run.user.get_username()}) in the self-service portal"
    if run.requested_by_id and run.requested_by_id != run.user_id and run.requested_by is not None:
        reason += f", run for them by IT staff {run.requested_by.get_username()}"
    return platform.Send(
        reference=str(run.pk),
        action_uid=str(run.action_uid),
        action_nql_id=run.action_nql_id,
        device_uid=run.device_uid,
        engine_uids=tuple(run.engine_uids or ()),
        timeout_seconds=run.timeout_seconds,
        params=dict(run.params or {}),
        reason=reason,
        kind=run.action_kind,
        user_upn=run.user.email if run.action_kind == platform.WORKFLOW else "",
    )


def still_ours(run: Run) -> bool:
    """Right before the call: is the run still "sending" with this attempt? One query; the connection
    is given back again before the call."""
    ours = Run.objects.filter(pk=run.pk, status=Run.Status.SENDING, attempts=run.attempts).exists()
    release_db_connection()
    return ours


def release_db_connection() -> None:
    """Give this thread's database connection back (to the pool) before waiting on Nexthink.

    A call may take up to timeoutSeconds: a worker thread must not hold a connection meanwhile, or
    the worker's concurrency, not the pool, decides how many PostgreSQL connections it holds. The
    next query takes one again. Inside a transaction (a test, a caller's atomic block) it is kept.
    """
    if not connection.in_atomic_block:
        connection.close()


def still_allowed(run: Run) -> tuple[str, str] | None:
    """Re-check, at send time, what was checked at submit time: (code, employee's words) when refused.
    The words are stored on the run in English and shown translated (wording.translated_message)."""
    if run.action is None or not run.action.enabled:
        return "ACTION_WITHDRAWN", gettext_noop("IT withdrew this action before it was sent, so nothing was sent.")
    # The action still visible to the run's employee (the catalog's rule) and the device still theirs
    # (its owner column), read now, in one query.
    action_visible, device_owned = visible_and_owned(run.pk)
    requester = run.requested_by  # no query when requested_by_id is None
    if requester is None and not (run.user.is_active and action_visible):
        return "ACTION_WITHDRAWN", gettext_noop("This action is no longer available to you, so nothing was sent.")
    if requester is not None and not (requester.is_active and requester.has_perm(RUN_ON_ANY_DEVICE)):
        return "ACTION_WITHDRAWN", gettext_noop(
            "The IT staff member who asked for this may no longer do so, so nothing was sent."
        )
    device = run.device
    device_gone = device is None or device.uid != run.device_uid
    if device_gone or not device_owned:
        if device is not None and not device_gone:  # e.g. a fresh NXQL answer moved the device since submit
            security_event("device_not_owned", user=run.user, device=device.uid, source_address="", stage="dispatch")
        return "DEVICE_NOT_OWNED", gettext_noop("This device is no longer registered to you, so nothing was sent.")
    if device is not None and not fits(run.action, device.platform):
        # IT changed the systems the action runs on, or the device's system became known, since submit.
        return "WRONG_SYSTEM", gettext_noop("This action does not run on this device's system, so nothing was sent.")
    return None
