"""Writes and business rules: submitting, dispatching and reaping runs."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from actions import devices, selectors
from actions.models import Device, Engine, EngineResult, RemoteAction, Run, RunAttempt
from actions.nexthink.client import EngineAnswer, client_from_settings
from actions.nexthink.errors import ActApiError, ErrorKind

log = logging.getLogger(__name__)
Status = Run.Status


class RunRefused(Exception):
    """A run the rules do not allow now (cooldown, daily limit); the message is for the employee."""


def action_timeout(action: RemoteAction) -> int:
    return action.timeout_seconds or settings.NEXTHINK_DEFAULT_TIMEOUT_SECONDS


# --- Submit ------------------------------------------------------------------------------------
def run_submit(
    *,
    user,
    action: RemoteAction,
    device: Device,
    params: dict[str, str],
    idempotency_key: str = "",
    requested_by=None,
    retry_of: Run | None = None,
) -> Run:
    """Store a queued run with a snapshot of what will be sent, and enqueue it once committed.

    A repeated idempotency key returns the run it first made. After commit, `run.enqueued` says
    whether the broker took the task (False: the reaper sends it later).
    """
    check_params(action, params)
    with transaction.atomic():
        # One submit at a time per employee: the idempotency lookup, the cooldown and the daily
        # limit below are then read and written without a race. (A run's user owns its device.)
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        if idempotency_key:
            existing = Run.objects.filter(user=user, idempotency_key=idempotency_key).first()
            if existing:
                existing.enqueued = True
                return existing
        check_limits(user=user, action=action, device=device)
        run = Run.objects.create(
            user=user,
            requested_by=requested_by,
            action=action,
            device=device,
            retry_of=retry_of,
            idempotency_key=idempotency_key,
            action_name=action.name,
            action_uid=action.nexthink_uid,
            device_uid=device.uid,
            device_name=device.name,
            timeout_seconds=action_timeout(action),
            engine_uids=target_engines(action, device),
            params=dict(params),
            max_attempts=settings.RUN_MAX_ATTEMPTS,
        )
        run.enqueued = None
        log.info(
            "run %s queued action=%s device=%s user=%s by=%s",
            run.pk,
            action.nexthink_uid,
            device.uid,
            user.get_username(),
            requested_by.get_username() if requested_by else "-",
        )
        transaction.on_commit(lambda: _enqueue_after_commit(run))
    return run


class InvalidParams(ValueError):
    """Parameters the action does not define (or not as strings): nothing is stored or sent."""


def check_params(action: RemoteAction, params: dict[str, str]) -> None:
    """Only the action's own parameters, as strings, may reach Nexthink (it ignores unknown names)."""
    defined = {param.name for param in action.parameters.all()}
    unknown = sorted(set(params) - defined)
    if unknown:
        raise InvalidParams(f"“{action.name}” has no parameter {', '.join(unknown)}.")
    if not all(isinstance(value, str) for value in params.values()):
        raise InvalidParams("Parameter values are sent to Nexthink as strings.")


def target_engines(action: RemoteAction, device: Device) -> list[str]:
    """The device's own Engine when it is known (and allowed), else the action's Engines (none: all)."""
    allowed = sorted(engine.database_uid for engine in action.engines.all())
    if device.engine_id and (not allowed or device.engine.database_uid in allowed):
        return [device.engine.database_uid]
    return allowed


def _enqueue_after_commit(run: Run) -> None:
    run.enqueued = run_enqueue(run_id=run.pk)


def check_limits(*, user, action: RemoteAction, device: Device, now: datetime | None = None) -> None:
    """Raise RunRefused when the action's cooldown or daily limit forbids a run now."""
    now = now or timezone.now()
    # A failed run never reached the device, and an unknown one tells the employee to run it again:
    # neither starts a cooldown or uses up the daily limit.
    counted = Run.objects.exclude(status__in=[Status.FAILED, Status.UNKNOWN])
    if action.cooldown_minutes:
        since = now - timedelta(minutes=action.cooldown_minutes)
        last = counted.filter(action=action, device=device, created_at__gt=since).order_by("-created_at").first()
        if last:
            again = timezone.localtime(last.created_at + timedelta(minutes=action.cooldown_minutes))
            raise RunRefused(
                f"“{action.name}” ran on {device.name} a moment ago. You can run it again at {again:%H:%M}."
            )
    if action.daily_limit_per_user:
        day_start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
        used = counted.filter(action=action, user=user, created_at__gte=day_start).count()
        if used >= action.daily_limit_per_user:
            raise RunRefused(
                f"You have run “{action.name}” {used} times today, the daily limit. You can run it again tomorrow."
            )


def run_enqueue(*, run_id, countdown: float | None = None) -> bool:
    """Hand the run to the broker; False (and a log line) when the broker cannot be reached."""
    from actions.tasks import dispatch_run

    try:
        dispatch_run.apply_async((str(run_id),), countdown=countdown)
    except Exception:  # kombu raises many types for a broker that is down; the run stays stored
        log.warning("run %s could not be enqueued; the reaper will send it", run_id, exc_info=True)
        return False
    Run.objects.filter(pk=run_id).update(enqueued_at=timezone.now())
    return True


# --- Dispatch ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DispatchResult:
    status: str
    retry_in: float | None = None  # seconds until the next attempt, when one is planned


def run_dispatch(*, run_id) -> DispatchResult | None:
    """Send a run to the Act API once. None when another worker has it (or it is not due)."""
    now = timezone.now()
    claimed = (
        Run.objects.filter(pk=run_id, status__in=[Status.QUEUED, Status.RETRYING])
        .exclude(next_attempt_at__gt=now)
        .update(status=Status.SENDING, sending_at=now, attempts=F("attempts") + 1)
    )
    if claimed != 1:
        log.info("run %s not claimed: already taken, final or not due", run_id)
        return None
    run = Run.objects.select_related("action", "device", "user", "requested_by").get(pk=run_id)
    log.info("run %s sending attempt %s of %s", run.pk, run.attempts, run.max_attempts)
    attempt = RunAttempt.objects.create(run=run, number=run.attempts, started_at=now)

    called = False
    try:
        refusal = _still_allowed(run)
        if refusal:
            return _finish_failed(run, attempt, code=refusal[0], message=refusal[1], kind=ErrorKind.PERMANENT)
        release_db_connection()
        try:
            called = True
            answers = client_from_settings().run(
                remote_action_uid=str(run.action_uid),
                device_uids=[run.device_uid],
                engine_uids=run.engine_uids or None,
                timeout_seconds=run.timeout_seconds,
                params=run.params or None,
                request_uid=str(run.pk),
            )
        except ActApiError as error:
            return _handle_error(run, attempt, error)
        return _finish_answered(run, attempt, answers)
    except Exception:
        # A bug or a database error must not leave the run in "sending" for the reaper to misname.
        log.exception("run %s: unexpected error while dispatching", run.pk)
        kind, status = (ErrorKind.UNKNOWN, Status.UNKNOWN) if called else (ErrorKind.PERMANENT, Status.FAILED)
        message = (
            "The portal hit an internal problem after sending this, so it cannot tell whether the action ran."
            if called
            else "The portal hit an internal problem before sending this; nothing was sent. Please try again."
        )
        return _finish_failed(run, attempt, code="PORTAL_ERROR", message=message, kind=kind, status=status)


def release_db_connection() -> None:
    """Give this thread's database connection back (to the pool) before waiting on Nexthink.

    A call may take up to timeoutSeconds: a worker thread must not hold a connection meanwhile, or
    the worker's concurrency, not the pool, decides how many PostgreSQL connections it holds. The
    next query takes one again. Inside a transaction (a test, a caller's atomic block) it is kept.
    """
    if not connection.in_atomic_block:
        connection.close()


def _still_allowed(run: Run) -> tuple[str, str] | None:
    """Re-check, at send time, what was checked at submit time."""
    if run.action is None or not run.action.enabled:
        return "ACTION_WITHDRAWN", "IT withdrew this action before it was sent."
    if run.requested_by_id is None and not selectors.actions_visible_to(run.user).filter(pk=run.action_id).exists():
        return "ACTION_WITHDRAWN", "This action is no longer available to you, so nothing was sent."
    if run.requested_by_id is not None and not (
        run.requested_by.is_active and run.requested_by.has_perm("actions.run_action_on_any_device")
    ):
        return "ACTION_WITHDRAWN", "The IT staff member who asked for this may no longer do so; nothing was sent."
    if run.device is None or run.device.uid != run.device_uid or not devices.device_is_owned_by(run.device, run.user):
        return "DEVICE_NOT_OWNED", "This device is no longer registered to you, so nothing was sent."
    return None


def _finish_answered(run: Run, attempt: RunAttempt, answers: list[EngineAnswer]) -> DispatchResult:
    names = dict(
        Engine.objects.filter(database_uid__in=[a.database_uid for a in answers]).values_list("database_uid", "name")
    )
    ok = sum(a.ok for a in answers)
    status = Status.SUCCEEDED if answers and ok == len(answers) else Status.PARTIAL if ok else Status.FAILED
    with transaction.atomic():
        EngineResult.objects.bulk_create(
            EngineResult(
                run=run,
                database_uid=a.database_uid[:64],
                engine_name=names.get(a.database_uid, ""),
                code=a.raw_code[:100],
                message=a.message,
            )
            for a in answers
        )
        _close_attempt(attempt, outcome="answered")
        _set_final(run, status, code="" if ok else "NO_ENGINE_OK", message="", kind="")
    return DispatchResult(status)


def _handle_error(run: Run, attempt: RunAttempt, error: ActApiError) -> DispatchResult:
    if error.kind is ErrorKind.RETRYABLE and run.attempts < run.max_attempts:
        delay = retry_delay(run.attempts)
        with transaction.atomic():
            _close_attempt(attempt, outcome="retryable", code=error.reason, message=error.message)
            Run.objects.filter(pk=run.pk, status=Status.SENDING).update(
                status=Status.RETRYING,
                next_attempt_at=timezone.now() + timedelta(seconds=delay),
                error_code=error.reason,
                error_kind=str(error.kind),
                error_message=error.employee_message,
            )
        log.info("run %s retrying in %.1f s after %s", run.pk, delay, error.reason)
        return DispatchResult(Status.RETRYING, retry_in=delay)
    status = Status.UNKNOWN if error.kind is ErrorKind.UNKNOWN else Status.FAILED
    return _finish_failed(
        run, attempt, code=error.reason, message=error.employee_message, kind=error.kind, status=status
    )


def _finish_failed(
    run: Run, attempt: RunAttempt, *, code: str, message: str, kind: ErrorKind, status: str = Status.FAILED
) -> DispatchResult:
    with transaction.atomic():
        _close_attempt(attempt, outcome=str(kind), code=code, message=message)
        _set_final(run, status, code=code, message=message, kind=str(kind))
    return DispatchResult(status)


def _close_attempt(attempt: RunAttempt, *, outcome: str, code: str = "", message: str = "") -> None:
    attempt.finished_at = timezone.now()
    attempt.outcome, attempt.error_code, attempt.error_message = outcome, code, message
    attempt.save(update_fields=["finished_at", "outcome", "error_code", "error_message"])


def _set_final(run: Run, status: str, *, code: str, message: str, kind: str) -> None:
    # From SENDING, or from UNKNOWN when the reaper gave up on it first: a real answer is the better truth.
    Run.objects.filter(pk=run.pk, status__in=[Status.SENDING, Status.UNKNOWN]).update(
        status=status, finished_at=timezone.now(), error_code=code, error_message=message, error_kind=kind
    )
    log.info("run %s %s%s", run.pk, status, f" ({code})" if code else "")


def retry_delay(attempt: int) -> float:
    """Exponential backoff with full jitter: attempt 1 waits up to the base, then doubles, capped."""
    ceiling = min(settings.RUN_RETRY_MAX_SECONDS, settings.RUN_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


# --- Reap --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReapReport:
    requeued: int
    marked_unknown: int
    expired: int = 0


def runs_reap(*, now: datetime | None = None) -> ReapReport:
    """Expire runs queued too long, re-enqueue runs the broker lost, mark runs whose worker died."""
    now = now or timezone.now()
    expired = _expire_unsent(now)
    requeued = _requeue_lost(now)
    marked = _mark_stuck_sending(now)
    if requeued or marked or expired:
        log.info("reaper: requeued %s, marked unknown %s, expired %s", requeued, marked, expired)
    return ReapReport(requeued=requeued, marked_unknown=marked, expired=expired)


def _expire_unsent(now: datetime) -> int:
    """A run that could not be sent for RUN_QUEUE_MAX_AGE_SECONDS fails, rather than go out hours late."""
    too_old = now - timedelta(seconds=settings.RUN_QUEUE_MAX_AGE_SECONDS)
    pks = list(
        Run.objects.filter(status__in=[Status.QUEUED, Status.RETRYING], created_at__lt=too_old).values_list(
            "pk", flat=True
        )[:500]
    )
    expired = Run.objects.filter(pk__in=pks, status__in=[Status.QUEUED, Status.RETRYING]).update(
        status=Status.FAILED,
        finished_at=now,
        error_code="NOT_SENT",
        error_kind=str(ErrorKind.RETRYABLE),
        error_message="The portal could not send this to Nexthink in time, so nothing was sent. Please run it again.",
    )
    for pk in pks:
        log.warning("run %s failed: not sent within %s s", pk, settings.RUN_QUEUE_MAX_AGE_SECONDS)
    return expired


def _requeue_lost(now: datetime) -> int:
    """Runs due to be sent, whose last hand-over to the broker (if any) is older than it should be."""
    stale = now - timedelta(seconds=settings.RUN_REQUEUE_AFTER_SECONDS)
    not_recently_enqueued = Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale)
    due = Q(status=Status.QUEUED, created_at__lt=stale) | Q(status=Status.RETRYING, next_attempt_at__lt=stale)
    pks = Run.objects.filter(due & not_recently_enqueued).values_list("pk", flat=True)[:500]
    return sum(run_enqueue(run_id=pk) for pk in pks)


def _mark_stuck_sending(now: datetime) -> int:
    grace = (
        settings.NEXTHINK_CONNECT_TIMEOUT_SECONDS
        + settings.NEXTHINK_READ_MARGIN_SECONDS
        + settings.RUN_SENDING_GRACE_SECONDS
    )
    marked = 0
    candidates = Run.objects.filter(status=Status.SENDING, sending_at__lt=now - timedelta(seconds=grace))
    for pk, sending_at, timeout in candidates.values_list("pk", "sending_at", "timeout_seconds"):
        if sending_at + timedelta(seconds=timeout + grace) > now:
            continue
        marked += Run.objects.filter(pk=pk, status=Status.SENDING, sending_at=sending_at).update(
            status=Status.UNKNOWN,
            finished_at=now,
            error_code="WORKER_LOST",
            error_kind=str(ErrorKind.UNKNOWN),
            error_message=(
                "The portal lost track of this run while sending it, so it cannot tell whether the action ran."
            ),
        )
        RunAttempt.objects.filter(run_id=pk, finished_at__isnull=True).update(finished_at=now, outcome="worker_lost")
        log.warning("run %s unknown: still sending after %s s", pk, timeout + grace)
    return marked
