"""Submitting, dispatching and reaping runs: the service layer, against the simulator over HTTP."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from actions.catalog.parameters import InvalidParams
from actions.models import EngineResult, Run, RunAttempt
from actions.runs import outcomes
from actions.runs.dispatch import run_dispatch
from actions.runs.outcomes import retry_delay
from actions.runs.reaper import runs_reap
from actions.runs.submit import RunRefused, run_submit
from simulators import act_api as sim
from tests.conftest import BROKER_DOWN
from tests.factories import EMEA, make_device, make_due, make_sim_action, submit

Status = Run.Status


def at_once(calls) -> None:
    """Run the calls in threads started together; each thread closes its own database connection."""

    def run(call):
        try:
            call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- Submit ------------------------------------------------------------------------------------
def test_it_stores_a_queued_run_with_a_snapshot(alice, action, laptop, settings):
    action.timeout_seconds = 45
    action.save()
    action.engines.create(database_uid=EMEA, name="engine-emea")

    run = submit(alice, action, laptop)

    run.refresh_from_db()
    assert run.status == Status.QUEUED
    assert (run.action_name, str(run.action_uid), run.device_uid, run.device_name) == (
        "Clear Teams cache",
        "07844969-1889-4de3-9026-020af94be855",
        "da2add909a144e8235453f88dc45172f",
        "LAPTOP-ALICE",
    )
    assert (run.timeout_seconds, run.engine_uids, run.params) == (45, [EMEA], {"Mode": "full"})


def test_it_enqueues_the_run_only_after_commit(alice, action, laptop, broker_queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = submit(alice, action, laptop)
    assert broker_queue() == []

    for callback in callbacks:
        callback()

    assert broker_queue() == [str(run.pk)]
    assert run.enqueued is True
    assert Run.objects.get(pk=run.pk).enqueued_at is not None


def test_it_keeps_the_run_queued_when_the_broker_is_down(
    alice, action, laptop, django_capture_on_commit_callbacks, use_broker
):
    use_broker(BROKER_DOWN)

    with django_capture_on_commit_callbacks(execute=True):
        run = submit(alice, action, laptop)

    assert run.enqueued is False
    stored = Run.objects.get(pk=run.pk)
    assert stored.status == Status.QUEUED
    assert stored.enqueued_at is None  # never handed over: the reaper sends it without waiting on a backlog


def test_a_run_the_broker_never_took_goes_out_at_the_next_pass_however_young(
    alice, action, laptop, django_capture_on_commit_callbacks, use_broker, broker_queue
):
    use_broker(BROKER_DOWN)
    with django_capture_on_commit_callbacks(execute=True):
        run = submit(alice, action, laptop)
    use_broker(settings.CELERY_BROKER_URL)  # the broker is back

    assert runs_reap().requeued == 1  # seconds after submit: no age to wait out
    assert broker_queue() == [str(run.pk)]
    assert Run.objects.get(pk=run.pk).enqueued_at is not None
    assert runs_reap().requeued == 0  # and one copy only


def test_a_retry_the_broker_could_not_take_is_handed_over_when_due(alice, action, laptop, use_broker):
    from actions.runs.dispatch import run_enqueue

    run = submit(alice, action, laptop)
    Run.objects.filter(pk=run.pk).update(status=Status.RETRYING, next_attempt_at=timezone.now())
    use_broker(BROKER_DOWN)

    assert run_enqueue(run_id=run.pk, countdown=1) is False

    assert Run.objects.get(pk=run.pk).enqueued_at is None  # the reaper's next pass sends it


def test_two_reaper_passes_at_once_hand_a_run_over_once(alice, action, laptop, broker_queue, monkeypatch):
    from actions.runs import reaper

    run = submit(alice, action, laptop)
    Run.objects.filter(pk=run.pk).update(enqueued_at=None)
    real = reaper.run_enqueue

    def another_pass_meanwhile(**kwargs):
        assert reaper._hand_over(run.pk) is False  # the other pass finds it stamped
        return real(**kwargs)

    monkeypatch.setattr(reaper, "run_enqueue", another_pass_meanwhile)

    assert runs_reap().requeued == 1
    assert broker_queue() == [str(run.pk)]


def test_a_double_submitted_form_makes_one_run(alice, action, laptop):
    first = submit(alice, action, laptop, idempotency_key="token-1")
    second = submit(alice, action, laptop, idempotency_key="token-1")

    assert first.pk == second.pk
    assert Run.objects.count() == 1


def test_the_same_token_from_another_user_is_another_run(alice, bob, action, laptop):
    submit(alice, action, laptop, idempotency_key="token-1")
    run_submit(user=bob, action=action, device=make_device(bob), params={}, idempotency_key="token-1")

    assert Run.objects.count() == 2


def test_it_refuses_a_run_within_the_cooldown_and_says_when(alice, action, laptop):
    action.cooldown_minutes = 10
    action.save()
    first = submit(alice, action, laptop)

    with pytest.raises(RunRefused, match="run it again from"):
        submit(alice, action, laptop)

    Run.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    assert submit(alice, action, laptop).pk != first.pk


def test_a_failed_run_does_not_start_a_cooldown(alice, action, laptop):
    action.cooldown_minutes = 10
    action.save()
    Run.objects.filter(pk=submit(alice, action, laptop).pk).update(status=Status.FAILED)

    assert submit(alice, action, laptop).status == Status.QUEUED


def test_it_refuses_runs_over_the_daily_limit(alice, action, laptop):
    action.daily_limit_per_user = 2
    action.save()
    submit(alice, action, laptop)
    submit(alice, action, laptop)

    with pytest.raises(RunRefused, match="2 times today"):
        submit(alice, action, laptop)
    assert Run.objects.count() == 2


# --- Dispatch ----------------------------------------------------------------------------------
def test_it_sends_the_run_and_stores_each_engines_answer(alice, action, laptop, use_simulator, sim_requests):
    run = submit(alice, action, laptop)

    result = run_dispatch(run_id=run.pk)

    run.refresh_from_db()
    assert result.status == Status.PARTIAL == run.status  # the third Engine has no licence
    assert [(r.database_uid, r.code) for r in run.engine_results.all()] == [
        ("86acc8511251ec444d3a75bac33a23c7", "ok"),
        ("a4690014774dcc32b919c27d616166f7", "ok"),
        ("ce80dddfdb7a5c2346c4ac184b7d6a54", "engine_error"),
    ]
    [sent] = sim_requests()
    assert sent["body"]["requestUid"] == str(run.pk)
    assert sent["body"]["params"] == {"Mode": "full"}
    assert run.finished_at is not None and run.attempts == 1


def test_it_succeeds_when_every_targeted_engine_says_ok(alice, action, laptop, use_simulator):
    action.engines.create(database_uid=EMEA, name="engine-emea")
    run = submit(alice, action, laptop)

    run_dispatch(run_id=run.pk)

    assert Run.objects.get(pk=run.pk).status == Status.SENT
    assert EngineResult.objects.get(run=run).engine_name == "engine-emea"


def test_a_second_delivery_of_the_task_makes_no_second_call(alice, action, laptop, use_simulator, sim_requests):
    run = submit(alice, action, laptop)

    assert run_dispatch(run_id=run.pk) is not None
    assert run_dispatch(run_id=run.pk) is None

    assert len(sim_requests()) == 1
    assert RunAttempt.objects.filter(run=run).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_make_one_call(alice, action, laptop, use_simulator, sim_requests):
    run = submit(alice, action, laptop)
    results = []

    at_once([lambda: results.append(run_dispatch(run_id=run.pk))] * 4)

    assert sum(result is not None for result in results) == 1
    assert len(sim_requests()) == 1


def test_a_retryable_failure_is_retried_then_succeeds(alice, action, laptop, use_simulator, inject_fault, sim_requests):
    action.engines.create(database_uid=EMEA, name="engine-emea")
    inject_fault("html_503", times=1)
    run = submit(alice, action, laptop)

    first = run_dispatch(run_id=run.pk)
    run.refresh_from_db()
    assert first.status == Status.RETRYING == run.status
    assert 0 < first.retry_in <= 2
    assert run.error_code == "UNAVAILABLE"
    assert run_dispatch(run_id=run.pk) is None  # not due yet

    make_due(run)
    second = run_dispatch(run_id=run.pk)

    run.refresh_from_db()
    assert second.status == Status.SENT == run.status
    assert [(a.number, a.outcome, a.error_code) for a in run.attempt_log.all()] == [
        (1, "retryable", "UNAVAILABLE"),
        (2, "answered", ""),
    ]
    assert len(sim_requests()) == 2


def test_it_fails_with_the_reason_after_its_last_retry(alice, action, laptop, use_simulator, inject_fault, settings):
    settings.RUN_MAX_ATTEMPTS = 2
    inject_fault("html_502", times=0)
    run = submit(alice, action, laptop)

    run_dispatch(run_id=run.pk)
    make_due(run)
    last = run_dispatch(run_id=run.pk)

    run.refresh_from_db()
    assert last.status == Status.FAILED == run.status
    assert (run.attempts, run.error_code, run.error_kind) == (2, "UNAVAILABLE", "retryable")
    assert "unavailable" in run.error_message


def test_a_permanent_failure_is_not_retried(alice, laptop, use_simulator, sim_requests):
    action = make_sim_action(nexthink_uid="e6bb97be-0957-49e0-9922-1a684d093858")  # no manual execution
    run = submit(alice, action, laptop, params={})

    result = run_dispatch(run_id=run.pk)

    run.refresh_from_db()
    assert result.status == Status.FAILED == run.status
    assert (run.error_code, run.error_kind) == ("NO_MANUAL_EXECUTION", "permanent")
    assert run.error_message == (
        "Nexthink does not allow this action to be started on request. Nothing was sent. Please contact IT."
    )
    assert len(sim_requests()) == 1


def test_no_answer_means_outcome_unknown_and_no_resend(
    alice, action, laptop, use_simulator, inject_fault, sim_requests
):
    inject_fault("drop")
    run = submit(alice, action, laptop)

    result = run_dispatch(run_id=run.pk)

    run.refresh_from_db()
    assert result.status == Status.UNKNOWN == run.status
    assert result.retry_in is None and run.next_attempt_at is None
    assert run.error_code == "CONNECTION_LOST"
    assert len(sim_requests()) == 1


def test_it_rechecks_the_device_owner_before_sending(alice, bob, action, laptop, use_simulator, sim_requests, caplog):
    run = submit(alice, action, laptop)
    laptop.owner = bob
    laptop.save()

    with caplog.at_level("WARNING", logger="actions.security"):
        result = run_dispatch(run_id=run.pk)

    assert result.status == Status.FAILED
    assert Run.objects.get(pk=run.pk).error_code == "DEVICE_NOT_OWNED"
    assert sim_requests() == []
    assert any("device_not_owned" in r.getMessage() and laptop.uid in r.getMessage() for r in caplog.records)


def _disable_action(alice, action, group):
    action.enabled = False
    action.save()


def _move_action_to_another_team(alice, action, group):
    action.groups.add(group)


def _deactivate_employee(alice, action, group):
    alice.is_active = False
    alice.save()


@pytest.mark.parametrize("withdraw", [_disable_action, _move_action_to_another_team, _deactivate_employee])
def test_it_does_not_send_what_the_employee_may_no_longer_run(
    alice, action, laptop, use_simulator, sim_requests, staff_group, withdraw
):
    run = submit(alice, action, laptop)
    withdraw(alice, action, staff_group)

    run_dispatch(run_id=run.pk)

    run.refresh_from_db()
    assert (run.status, run.error_code) == (Status.FAILED, "ACTION_WITHDRAWN")
    assert sim_requests() == []


def test_retry_delays_grow_and_stay_capped(settings):
    settings.RUN_RETRY_BASE_SECONDS, settings.RUN_RETRY_MAX_SECONDS = 2, 60
    delays = [retry_delay(n) for n in range(1, 10)]

    assert 1 <= delays[0] <= 2 and 4 <= delays[2] <= 8
    assert all(30 <= d <= 60 for d in delays[6:])


# --- Reap --------------------------------------------------------------------------------------
def test_the_reaper_requeues_runs_the_broker_lost(alice, action, laptop, broker_queue):
    old = submit(alice, action, laptop)
    five_minutes_ago = timezone.now() - timedelta(minutes=5)
    Run.objects.filter(pk=old.pk).update(created_at=five_minutes_ago, enqueued_at=five_minutes_ago)
    recent = submit(alice, action, laptop)

    report = runs_reap()

    assert report.requeued == 1
    assert broker_queue() == [str(old.pk)]
    assert Run.objects.get(pk=recent.pk).status == Status.QUEUED


def test_the_reaper_marks_runs_stuck_in_sending_as_unknown(alice, action, laptop, settings):
    stuck, busy = submit(alice, action, laptop), submit(alice, action, laptop)
    long_ago = timezone.now() - timedelta(
        seconds=stuck.timeout_seconds + 5 + 15 + settings.RUN_SENDING_GRACE_SECONDS + 1
    )
    Run.objects.filter(pk=stuck.pk).update(status=Status.SENDING, sending_at=long_ago)
    Run.objects.filter(pk=busy.pk).update(status=Status.SENDING, sending_at=timezone.now() - timedelta(seconds=30))

    report = runs_reap()

    assert report.marked_unknown == 1
    stuck.refresh_from_db()
    assert (stuck.status, stuck.error_code) == (Status.UNKNOWN, "WORKER_LOST")
    assert Run.objects.get(pk=busy.pk).status == Status.SENDING
    assert run_dispatch(run_id=stuck.pk) is None  # and it is never resent


def test_the_reaper_says_nothing_of_a_run_another_step_decided_first(
    alice, action, laptop, settings, caplog, monkeypatch
):
    from actions.runs import lifecycle

    stuck = submit(alice, action, laptop)
    grace = 5 + 15 + settings.RUN_SENDING_GRACE_SECONDS + 1
    long_ago = timezone.now() - timedelta(seconds=stuck.timeout_seconds + grace)
    Run.objects.filter(pk=stuck.pk).update(status=Status.SENDING, sending_at=long_ago)
    real = lifecycle.reap

    def answer_arrives_first(pk, verdict, **kwargs):
        # Between the reaper's read and its move, the worker's answer is recorded: the move changes nothing.
        Run.objects.filter(pk=pk).update(status=Status.SENT)
        return real(pk, verdict, **kwargs)

    monkeypatch.setattr(lifecycle, "reap", answer_arrives_first)
    with caplog.at_level("WARNING", logger="actions.runs"):
        report = runs_reap()

    assert report.marked_unknown == 0
    assert Run.objects.get(pk=stuck.pk).status == Status.SENT
    assert not [r for r in caplog.records if "still sending" in r.getMessage()]
    assert not RunAttempt.objects.filter(run=stuck).exists()


def test_not_sent_in_time_never_catches_a_run_a_worker_just_claimed(alice, action, laptop, settings, monkeypatch):
    from actions.runs import lifecycle

    run = submit(alice, action, laptop)
    too_old = timezone.now() - timedelta(seconds=settings.RUN_QUEUE_MAX_AGE_SECONDS + 60)
    Run.objects.filter(pk=run.pk).update(created_at=too_old)
    real = lifecycle.reap

    def a_worker_claims_it_first(pk, verdict, **kwargs):
        # Between the reaper's read and its move, a worker claims the run and calls Nexthink.
        assert lifecycle.claim(pk)
        return real(pk, verdict, **kwargs)

    monkeypatch.setattr(lifecycle, "reap", a_worker_claims_it_first)
    report = runs_reap()

    assert report.expired == 0
    run.refresh_from_db()
    assert (run.status, run.error_code) == (Status.SENDING, "")
    # The worker's real answer is then recorded, not dropped.
    assert lifecycle.record(run, outcomes.Outcome(Status.SENT)) is True
    assert Run.objects.get(pk=run.pk).status == Status.SENT


def test_worker_lost_never_catches_a_run_already_following(alice, action, laptop, settings, monkeypatch):
    from actions.nexthink.platform import Sent
    from actions.runs import lifecycle

    run = submit(alice, action, laptop)
    assert lifecycle.claim(run.pk)
    Run.objects.filter(pk=run.pk).update(sending_at=timezone.now() - timedelta(hours=2))
    real = lifecycle.reap

    def nexthink_accepts_it_first(pk, verdict, **kwargs):
        # Between the reaper's read and its move, the worker records Infinity's acceptance.
        sent = outcomes.outcome_of_sent(Sent(request_id="req-1", expires_in_minutes=60))
        assert lifecycle.record(Run.objects.get(pk=pk), sent)
        return real(pk, verdict, **kwargs)

    monkeypatch.setattr(lifecycle, "reap", nexthink_accepts_it_first)
    report = runs_reap()

    assert report.marked_unknown == 0
    assert Run.objects.get(pk=run.pk).status == Status.FOLLOWING


def test_classic_sends_nothing_for_a_run_no_longer_its_attempts(alice, action, laptop, use_simulator, sim_requests):
    from actions.nexthink.platform import ClassicPlatform, NotOurs
    from actions.runs.dispatch import send_of

    run = submit(alice, action, laptop)
    asked = []

    def still_ours() -> bool:
        asked.append(True)
        return False

    with pytest.raises(NotOurs):
        ClassicPlatform().send(send_of(run), still_ours=still_ours)

    assert asked == [True] and sim_requests() == []
    ClassicPlatform().send(send_of(run), still_ours=lambda: True)
    assert len(sim_requests()) == 1


# --- Review follow-ups ---------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_simultaneous_double_submits_make_one_run(alice, laptop):
    action = make_sim_action()
    results, errors = [], []

    def post():
        try:
            results.append(run_submit(user=alice, action=action, device=laptop, params={}, idempotency_key="same").pk)
        except Exception as exc:  # an IntegrityError here is the bug this test guards against
            errors.append(exc)

    at_once([post] * 4)

    assert errors == []
    assert len(set(results)) == 1 and Run.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_simultaneous_submits_on_two_devices_keep_the_daily_limit(alice, laptop):
    action = make_sim_action(daily_limit_per_user=1)
    desktop = make_device(alice)
    outcomes = []

    def post(device):
        try:
            run_submit(user=alice, action=action, device=device, params={})
            outcomes.append("ok")
        except RunRefused:
            outcomes.append("refused")

    at_once([lambda: post(laptop), lambda: post(desktop)])

    assert sorted(outcomes) == ["ok", "refused"]
    assert Run.objects.count() == 1


def test_it_refuses_parameters_the_action_does_not_define(alice, laptop):
    action = make_sim_action()

    with pytest.raises(InvalidParams, match="has no parameter Typo"):
        run_submit(user=alice, action=action, device=laptop, params={"Typo": "x"})
    assert not Run.objects.exists()


def test_it_targets_the_devices_own_engine_when_known(alice, action):
    from actions.models import Engine

    emea = Engine.objects.create(database_uid=EMEA, name="engine-emea")
    device = make_device(alice, engine=emea)

    run = run_submit(user=alice, action=action, device=device, params={})

    assert run.engine_uids == [EMEA]


def test_an_engine_code_longer_than_expected_is_stored_not_a_crash(alice, laptop, settings):
    long_code = "a_new_code_" + "x" * 140
    config = sim.load_config()
    config["engines"][0] |= {"answer": long_code}
    odd = sim.start_in_thread(config=config)  # a Nexthink that invented a long Engine code
    settings.NEXTHINK_PORTAL_URL, settings.NEXTHINK_USERNAME, settings.NEXTHINK_PASSWORD = (
        odd.url,
        "portal",
        "portal-demo",
    )
    try:
        run = run_submit(user=alice, action=make_sim_action(), device=laptop, params={})
        result = run_dispatch(run_id=run.pk)
    finally:
        odd.shutdown()
        odd.server_close()

    run.refresh_from_db()
    assert result.status == run.status == Status.PARTIAL
    assert run.engine_results.first().code == long_code[:100]


def test_an_unknown_run_starts_the_cooldown(alice, action, laptop):
    # The action may have run: running it again at once could run it twice.
    action.cooldown_minutes = 10
    action.save()
    Run.objects.filter(pk=submit(alice, action, laptop).pk).update(status=Status.UNKNOWN)

    with pytest.raises(RunRefused, match="run it again from"):
        submit(alice, action, laptop)


def test_the_task_schedules_its_own_retry(alice, action, laptop, use_simulator, inject_fault, broker_queue):
    from actions.tasks import dispatch_run

    inject_fault("html_503")
    run = submit(alice, action, laptop)

    assert dispatch_run(str(run.pk)) == Status.RETRYING

    assert broker_queue() == [str(run.pk)]


def test_the_reaper_does_not_pile_up_tasks_for_one_run(alice, action, laptop, broker_queue, settings):
    run = submit(alice, action, laptop)
    # Never handed to the broker (it refused the task after commit).
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=5), enqueued_at=None)

    reports = [runs_reap() for _ in range(3)]

    assert [r.requeued for r in reports] == [1, 0, 0]
    assert broker_queue() == [str(run.pk)]


def test_the_reaper_requeues_an_overdue_retry(alice, action, laptop, broker_queue):
    run = submit(alice, action, laptop)
    Run.objects.filter(pk=run.pk).update(
        status=Status.RETRYING, next_attempt_at=timezone.now() - timedelta(minutes=5), enqueued_at=None
    )

    assert runs_reap().requeued == 1
    assert broker_queue() == [str(run.pk)]


def test_the_reaper_fails_runs_that_could_not_be_sent_for_too_long(alice, action, laptop, settings):
    run = submit(alice, action, laptop)
    Run.objects.filter(pk=run.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.RUN_QUEUE_MAX_AGE_SECONDS + 1)
    )

    report = runs_reap()

    run.refresh_from_db()
    assert report.expired == 1
    assert (run.status, run.error_code) == (Status.FAILED, "NOT_SENT")
    assert run_dispatch(run_id=run.pk) is None
