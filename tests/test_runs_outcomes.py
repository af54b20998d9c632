"""The run lifecycle's rules: each outcome lands in the status that tells the truth, over real HTTP."""

import time
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from actions.models import Engine, EngineResult, Run, RunAttempt
from actions.runs import lifecycle, outcomes, states
from actions.runs.dispatch import run_dispatch
from actions.runs.lifecycle import transition
from actions.runs.outcomes import Outcome
from actions.runs.reaper import runs_reap
from actions.runs.states import TRANSITIONS
from actions.runs.submit import IdempotencyConflict, RunRefused, fair_use, run_submit
from actions.runs.wording import status_summary
from tests.conftest import add_fault, requests_received
from tests.factories import AMER, EMEA, make_action, make_device, submit
from tests.worker import dispatch_in_thread

Status = Run.Status


def dispatched(run) -> Run:
    run_dispatch(run_id=run.pk)
    return Run.objects.get(pk=run.pk)


# --- The table ---------------------------------------------------------------------------------
def test_final_statuses_have_no_way_out():
    final = {
        Status.SENT,
        Status.PARTIAL,
        Status.FAILED,
        Status.UNKNOWN,
        Status.DONE,
        Status.DEVICE_FAILED,
        Status.EXPIRED,
        Status.DENIED,
        Status.APPROVAL_EXPIRED,
        Status.CANCELLED,
    }
    assert final == states.FINAL
    assert all(not TRANSITIONS[status] for status in states.FINAL)
    assert set(TRANSITIONS) == set(Status.values)


def test_a_move_from_a_status_the_run_has_left_changes_nothing(alice, emea_action, laptop):
    run = submit(alice, emea_action, laptop)

    assert transition(run.pk, Status.SENT, leaving=(Status.SENDING,)) is False  # it is still queued
    assert Run.objects.get(pk=run.pk).status == Status.QUEUED


def test_every_move_names_the_statuses_it_leaves(alice, emea_action, laptop):
    run = submit(alice, emea_action, laptop)

    with pytest.raises(TypeError):
        transition(run.pk, Status.FAILED)  # no default "any status the table allows"
    with pytest.raises(ValueError, match="must name"):
        transition(run.pk, Status.FAILED, leaving=())
    with pytest.raises(ValueError, match="no move from queued"):
        transition(run.pk, Status.SENT, leaving=(Status.QUEUED,))  # queued cannot become sent unsent
    assert Run.objects.get(pk=run.pk).status == Status.QUEUED


def test_moves_are_stamped_with_the_databases_clock(alice, emea_action, laptop, monkeypatch):
    run = submit(alice, emea_action, laptop)
    skewed = timezone.now() - timedelta(days=365)
    monkeypatch.setattr(timezone, "now", lambda: skewed)  # a worker whose clock is a year behind

    lifecycle.claim(run.pk)

    run.refresh_from_db()
    assert run.status == Status.SENDING
    assert run.sending_at > skewed + timedelta(days=300)


# --- Engine answers ----------------------------------------------------------------------------
def test_an_engine_timeout_is_outcome_unknown_and_counts_towards_the_cooldown(
    alice, emea_action, laptop, use_simulator, inject_fault, sim_requests
):
    emea_action.timeout_seconds, emea_action.cooldown_minutes = 1, 30
    emea_action.save()
    inject_fault("latency", seconds=1.5)  # the Engine does not hear back within timeoutSeconds

    run = dispatched(submit(alice, emea_action, laptop))

    assert (run.status, run.error_code, run.error_kind) == (Status.UNKNOWN, "ENGINE_TIMEOUT", "unknown")
    assert "cannot tell whether it ran" in run.error_message
    assert EngineResult.objects.get(run=run).code == "timeout"
    with pytest.raises(RunRefused, match="run it again from"):
        submit(alice, emea_action, laptop)
    assert len(sim_requests()) == 1


def test_an_engine_code_the_portal_does_not_know_is_outcome_unknown(
    alice, emea_action, laptop, use_simulator, inject_fault
):
    inject_fault("answer", body=[{"databaseUid": EMEA, "code": "queued_somewhere", "message": ""}])

    run = dispatched(submit(alice, emea_action, laptop))

    assert (run.status, run.error_code) == (Status.UNKNOWN, "ENGINE_UNRECOGNISED")


def test_a_device_that_is_not_connected_is_not_sent_and_does_not_count(
    alice, emea_action, laptop, use_simulator, inject_fault
):
    emea_action.cooldown_minutes = 30
    emea_action.save()
    inject_fault("answer", body=[{"databaseUid": EMEA, "code": "not_connected", "message": ""}])

    run = dispatched(submit(alice, emea_action, laptop))

    assert (run.status, run.error_code) == (Status.FAILED, "NO_ENGINE_OK")
    assert "isn't connected to Nexthink right now" in run.error_message
    assert submit(alice, emea_action, laptop).status == Status.QUEUED  # nothing ran: no cooldown


# --- API errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["internal_error", "html_500", "html_504"])
def test_a_server_error_after_sending_is_unknown_and_never_resent(
    alice, emea_action, laptop, use_simulator, inject_fault, sim_requests, broker_queue, fault
):
    from actions.tasks import dispatch_run

    inject_fault(fault)
    run = submit(alice, emea_action, laptop)

    assert dispatch_run(str(run.pk)) == Status.UNKNOWN

    run.refresh_from_db()
    assert (run.status, run.error_kind, run.next_attempt_at) == (Status.UNKNOWN, "unknown", None)
    assert "will try again" not in run.error_message and "Check your device" in run.error_message
    assert broker_queue() == [] and len(sim_requests()) == 1


def test_a_tls_error_after_the_request_was_sent_is_unknown_and_never_resent(
    alice, emea_action, laptop, settings, tls_simulator, tls_ca, broker_queue
):
    from actions.tasks import dispatch_run

    settings.NEXTHINK_PORTAL_URL = tls_simulator.url
    settings.NEXTHINK_USERNAME, settings.NEXTHINK_PASSWORD = "portal", "portal-demo"
    settings.NEXTHINK_DEFAULT_TIMEOUT_SECONDS, settings.NEXTHINK_READ_MARGIN_SECONDS = 5, 1
    settings.NEXTHINK_VERIFY_TLS, settings.NEXTHINK_CA_BUNDLE = True, tls_ca
    add_fault(tls_simulator, "not_tls", verify=tls_ca)  # Nexthink read the request; its answer breaks TLS
    run = submit(alice, emea_action, laptop)

    assert dispatch_run(str(run.pk)) == Status.UNKNOWN

    run.refresh_from_db()
    assert (run.status, run.error_kind, run.next_attempt_at) == (Status.UNKNOWN, "unknown", None)  # not retried
    assert run.error_code == "CONNECTION_LOST"
    assert "certificate" not in run.error_message and "cannot tell whether the action ran" in run.error_message
    assert broker_queue() == [] and len(requests_received(tls_simulator, verify=tls_ca)) == 1


def test_a_429_is_retried_no_sooner_than_retry_after(alice, emea_action, laptop, use_simulator, inject_fault, settings):
    settings.RUN_RETRY_BASE_SECONDS, settings.RUN_RETRY_MAX_SECONDS = 1, 2
    inject_fault("too_many", retry_after="30")
    run = submit(alice, emea_action, laptop)

    outcome = run_dispatch(run_id=run.pk)

    run.refresh_from_db()
    assert outcome.status == Status.RETRYING == run.status
    assert outcome.retry_in >= 30
    assert run.next_attempt_at - timezone.now() > timedelta(seconds=25)
    assert run_dispatch(run_id=run.pk) is None  # not due yet


def test_a_refused_connection_is_retried(alice, emea_action, laptop, settings):
    settings.NEXTHINK_PORTAL_URL = "http://127.0.0.1:9"  # nothing listens: refused at once
    run = submit(alice, emea_action, laptop)

    outcome = run_dispatch(run_id=run.pk)

    assert (outcome.status, outcome.code) == (Status.RETRYING, "CONNECTION_FAILED")


def test_the_last_attempt_never_promises_another(alice, emea_action, laptop, use_simulator, inject_fault, settings):
    settings.RUN_MAX_ATTEMPTS = 1
    inject_fault("html_503")

    run = dispatched(submit(alice, emea_action, laptop))

    assert (run.status, run.error_kind) == (Status.FAILED, "retryable")
    words = status_summary(run)
    assert "The portal tried 1 times. Nothing was sent." in words
    assert "tries again" not in words and "will try" not in words


# --- Storing what Nexthink sent ----------------------------------------------------------------
def test_codes_and_messages_of_any_length_are_stored(alice, emea_action, laptop, use_simulator, inject_fault):
    long = "x" * 5000 + "\x00end"
    inject_fault("answer", body=[{"databaseUid": "d" * 300, "code": "c" * 300 + "\x00", "message": long}])

    run = dispatched(submit(alice, emea_action, laptop))

    result = EngineResult.objects.get(run=run)
    assert (len(result.database_uid), len(result.code)) == (64, 100)
    assert "\x00" not in result.message and len(result.message) == outcomes.MESSAGE_LENGTH
    assert run.status == Status.UNKNOWN  # a code the portal does not know


def test_a_long_error_code_is_stored(alice, emea_action, laptop, use_simulator, inject_fault):
    inject_fault("answer", status=400, body={"code": "E" * 300, "error": "bad\x00" * 2000})

    run = dispatched(submit(alice, emea_action, laptop))

    assert (run.status, run.error_code) == (Status.FAILED, "E" * outcomes.CODE_LENGTH)


# --- Engines allowed -----------------------------------------------------------------------------
def test_a_device_of_an_engine_the_action_does_not_allow_is_refused_at_submit(alice, emea_action, broker_queue):
    amer = Engine.objects.create(database_uid=AMER, name="engine-amer")
    desktop = make_device(alice, engine=amer, name="DESKTOP-US")

    with pytest.raises(RunRefused, match="not available for DESKTOP-US"):
        run_submit(user=alice, action=emea_action, device=desktop, params={"Mode": "x"})

    assert not Run.objects.exists() and broker_queue() == []


# --- Idempotency ---------------------------------------------------------------------------------
def test_a_form_key_reused_for_other_parameters_is_refused(alice, emea_action, laptop):
    submit(alice, emea_action, laptop, idempotency_key="k" * 20)

    with pytest.raises(IdempotencyConflict, match="already sent once with other details"):
        submit(alice, emea_action, laptop, idempotency_key="k" * 20, params={"Mode": "quick"})
    assert Run.objects.count() == 1


def test_a_form_key_reused_for_another_device_is_refused(alice, emea_action, laptop):
    submit(alice, emea_action, laptop, idempotency_key="k" * 20)

    with pytest.raises(IdempotencyConflict):
        submit(alice, emea_action, make_device(alice), idempotency_key="k" * 20)
    assert Run.objects.count() == 1


def test_a_form_key_reused_for_another_action_is_refused(alice, emea_action, laptop):
    submit(alice, emea_action, laptop, idempotency_key="k" * 20)
    other = make_action()

    with pytest.raises(IdempotencyConflict):
        run_submit(user=alice, action=other, device=laptop, params={}, idempotency_key="k" * 20)
    assert Run.objects.count() == 1


def test_a_form_key_reused_for_the_same_request_returns_the_first_run(alice, emea_action, laptop):
    first = submit(alice, emea_action, laptop, idempotency_key="k" * 20)

    assert submit(alice, emea_action, laptop, idempotency_key="k" * 20).pk == first.pk


# --- The reaper and late answers -----------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_an_answer_after_the_reapers_verdict_does_not_overwrite_it(
    alice, emea_action, laptop, use_simulator, inject_fault, sim_requests
):
    inject_fault("latency", seconds=3)
    run = submit(alice, emea_action, laptop)
    worker, outcome = dispatch_in_thread(run.pk)
    deadline = time.monotonic() + 10
    while not requests.get(use_simulator.url + "/_sim/requests", timeout=5).json() and time.monotonic() < deadline:
        time.sleep(0.05)
    # The reaper decides first: the call has been going on for longer than it ever could.
    Run.objects.filter(pk=run.pk).update(sending_at=timezone.now() - timedelta(hours=2))
    assert runs_reap().marked_unknown == 1
    worker.join(timeout=20)

    run.refresh_from_db()
    assert outcome == [None]  # the late answer changed nothing and scheduled nothing
    assert (run.status, run.error_code) == (Status.UNKNOWN, "WORKER_LOST")
    assert not EngineResult.objects.filter(run=run).exists()
    assert RunAttempt.objects.get(run=run).outcome == "worker_lost"
    assert len(sim_requests()) == 1


def test_a_late_outcome_is_dropped(alice, emea_action, laptop):
    run = submit(alice, emea_action, laptop)
    lifecycle.claim(run.pk)
    Run.objects.filter(pk=run.pk).update(sending_at=timezone.now() - timedelta(hours=2))
    runs_reap()

    assert lifecycle.record(Run.objects.get(pk=run.pk), Outcome(Status.SENT)) is False
    assert Run.objects.get(pk=run.pk).status == Status.UNKNOWN
    # The reaper logged the lost attempt; the late outcome added nothing.
    assert [(a.number, a.outcome) for a in RunAttempt.objects.filter(run=run)] == [(1, "worker_lost")]


def test_the_reaper_leaves_runs_waiting_in_a_backlog_alone(
    alice, emea_action, laptop, broker_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        runs = [submit(alice, emea_action, laptop) for _ in range(3)]  # each handed to the broker, still waiting
    assert len(broker_queue()) == 3
    Run.objects.filter(pk__in=[r.pk for r in runs]).update(
        created_at=timezone.now() - timedelta(minutes=10), enqueued_at=timezone.now() - timedelta(minutes=10)
    )

    reports = [runs_reap() for _ in range(3)]

    assert [r.requeued for r in reports] == [0, 0, 0]
    assert sorted(broker_queue()) == sorted(str(r.pk) for r in runs)  # one message each, not four


def test_the_reaper_resends_runs_whose_messages_the_broker_lost(
    alice, emea_action, laptop, broker_queue, settings, django_capture_on_commit_callbacks
):
    from pathlib import Path

    with django_capture_on_commit_callbacks(execute=True):
        runs = [submit(alice, emea_action, laptop) for _ in range(2)]
    assert len(broker_queue()) == 2
    Run.objects.filter(pk__in=[r.pk for r in runs]).update(
        created_at=timezone.now() - timedelta(minutes=10), enqueued_at=timezone.now() - timedelta(minutes=10)
    )
    for message in (Path(settings.BROKER_DIR) / "queue").glob("*.msg"):
        message.unlink()  # the broker lost them (a Redis restart without persistence)

    assert runs_reap().requeued == 2
    assert runs_reap().requeued == 0
    assert sorted(broker_queue()) == sorted(str(r.pk) for r in runs)


def test_the_reaper_and_engine_sync_have_their_own_queue_and_expire(settings):
    from portal.celery import app

    router = app.amqp.router
    for task in ("actions.tasks.reap_runs", "actions.tasks.sync_engines_task"):
        assert router.route({}, task)["queue"].name == "maintenance"
    assert router.route({}, "actions.tasks.dispatch_run")["queue"].name == "celery"
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["reap-runs"]["options"]["expires"] == settings.REAPER_INTERVAL_SECONDS
    assert schedule["sync-engines"]["options"]["expires"] == settings.ENGINE_SYNC_INTERVAL_SECONDS
    assert {queue.name for queue in app.amqp.queues.values()} >= {"celery", "maintenance"}


def test_outcomes_say_whether_they_count():
    assert Outcome(Status.UNKNOWN).counts and Outcome(Status.PARTIAL).counts and Outcome(Status.SENT).counts
    assert not Outcome(Status.FAILED).counts


# --- Fair use ------------------------------------------------------------------------------------
def test_one_employee_cannot_fill_the_queue(alice, bob, emea_action, laptop, settings):
    settings.RUN_MAX_IN_FLIGHT_PER_USER = 2
    submit(alice, emea_action, laptop)
    submit(alice, emea_action, laptop)

    with pytest.raises(RunRefused, match="You already have 2 runs waiting or being sent"):
        submit(alice, emea_action, laptop)
    assert (
        run_submit(user=bob, action=emea_action, device=make_device(bob), params={"Mode": "x"}).status == Status.QUEUED
    )


def test_finished_runs_free_a_place_in_flight(alice, emea_action, laptop, settings):
    settings.RUN_MAX_IN_FLIGHT_PER_USER = 1
    first = submit(alice, emea_action, laptop)
    Run.objects.filter(pk=first.pk).update(status=Status.SENT)

    assert submit(alice, emea_action, laptop).status == Status.QUEUED


def test_each_employee_has_a_rate_limit_across_actions(alice, emea_action, laptop, settings):
    settings.RUN_RATE_LIMIT_COUNT, settings.RUN_RATE_LIMIT_WINDOW_SECONDS = 2, 600
    other = make_action()
    run_submit(user=alice, action=other, device=laptop, params={})
    Run.objects.update(status=Status.SENT)
    submit(alice, emea_action, laptop)
    Run.objects.update(status=Status.SENT)

    with pytest.raises(RunRefused, match="You have started 2 runs in the last 10 minutes.*You can start another from"):
        submit(alice, emea_action, laptop)

    Run.objects.update(created_at=timezone.now() - timedelta(minutes=11))
    assert submit(alice, emea_action, laptop).status == Status.QUEUED


def test_the_rate_limit_says_when_the_oldest_counted_run_leaves_the_window(alice, emea_action, laptop, settings):
    now = timezone.now()
    for minutes_ago in (9, 5, 1):  # three runs in the window
        run = submit(alice, emea_action, laptop)
        Run.objects.filter(pk=run.pk).update(status=Status.SENT, created_at=now - timedelta(minutes=minutes_ago))
    # Then IT lowers the limit to two: the last two count, and the older of them sets the time.
    settings.RUN_RATE_LIMIT_COUNT, settings.RUN_RATE_LIMIT_WINDOW_SECONDS = 2, 600

    limits = fair_use(user=alice, now=now)

    assert not limits.allowed
    assert limits.again_at == now - timedelta(minutes=5) + timedelta(seconds=600)
    assert "You have started 3 runs in the last 10 minutes" in limits.message


def test_engine_names_are_read_again_for_a_new_engine_and_after_a_rename(db):
    from actions.devices.engines import engine_names

    first = Engine.objects.create(database_uid="a" * 32, name="engine-one")
    assert engine_names({"a" * 32}) == {"a" * 32: "engine-one"}

    # Not seen yet (and added without a signal, as an Engine sync in another process would): read again.
    Engine.objects.bulk_create([Engine(database_uid="b" * 32, name="engine-two")])
    assert engine_names({"b" * 32})["b" * 32] == "engine-two"

    first.name = "engine-renamed"
    first.save()
    assert engine_names({"a" * 32})["a" * 32] == "engine-renamed"
