"""Following a run up on a platform that reports the device's own result (Nexthink Infinity)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from actions.models import Run
from actions.nexthink.platform import DeviceResult, Sent
from actions.runs import lifecycle, outcomes, states
from actions.runs.follow_up import runs_follow_up
from actions.runs.reaper import UNREAD_AFTER_SECONDS, runs_reap
from actions.runs.states import is_final
from actions.runs.submit import run_submit
from tests.factories import make_device, make_sim_action

Status = Run.Status


def make_following(user, action=None, request_id="req-1") -> Run:
    """A run Nexthink Infinity accepted: following, first look due."""
    action = action or make_sim_action(nql_id="#clear_teams_cache")
    run = run_submit(user=user, action=action, device=make_device(user), params={})
    lifecycle.claim(run.pk)
    run.refresh_from_db()
    lifecycle.record(run, outcomes.outcome_of_sent(Sent(request_id=request_id, expires_in_minutes=60)))
    run.refresh_from_db()
    return run


@pytest.fixture
def following(alice):
    return make_following(alice)


def test_an_accepted_request_is_sent_not_done_and_followed_up(following):
    assert following.status == Status.FOLLOWING and not is_final(following.status)
    assert following.request_id == "req-1" and following.device_status == "waiting"
    assert following.expires_at - timezone.now() > timedelta(minutes=59)
    assert following.next_check_at is not None


@pytest.mark.parametrize(
    ("device_status", "status", "counts"),
    [("success", Status.DONE, True), ("failure", Status.DEVICE_FAILED, True), ("expired", Status.EXPIRED, False)],
)
def test_a_final_device_result_ends_the_run(following, device_status, status, counts):
    result = DeviceResult(status=device_status, raw_status=device_status, details="exit 0", outputs={"Freed": "2 GB"})

    assert lifecycle.record_follow_up(following, outcomes.outcome_of_device_result(result, expired=False), result)

    following.refresh_from_db()
    assert (following.status, following.device_status, following.outputs) == (status, device_status, {"Freed": "2 GB"})
    assert is_final(following.status) and following.finished_at is not None and following.next_check_at is None
    assert (status in states.COUNTED) is counts


def test_a_device_still_working_is_looked_at_again_later_and_less_often(following):
    result = DeviceResult(status="in_progress")
    delays = []
    for _ in range(4):
        before = timezone.now()
        assert outcomes.outcome_of_device_result(result, expired=False) is None
        lifecycle.record_follow_up(following, None, result)
        following.refresh_from_db()
        delays.append((following.next_check_at - before).total_seconds())

    assert following.status == Status.FOLLOWING and following.device_status == "in_progress"
    assert following.checks == 4
    assert delays == sorted(delays) and delays[-1] <= outcomes.MAX_CHECK_SECONDS + 1


def test_a_device_that_never_came_online_expires(following):
    outcome = outcomes.outcome_of_device_result(DeviceResult(status="waiting"), expired=True)

    lifecycle.record_follow_up(following, outcome, DeviceResult(status="waiting"))

    following.refresh_from_db()
    assert following.status == Status.EXPIRED
    assert "did not come online in time" in following.error_message


def test_no_record_of_the_execution_after_expiry_is_unknown(following):
    outcome = outcomes.outcome_of_device_result(None, expired=True)

    lifecycle.record_follow_up(following, outcome, None)

    following.refresh_from_db()
    assert (following.status, following.error_code) == (Status.UNKNOWN, "NO_EXECUTION")


def test_a_second_reading_after_the_end_changes_nothing(following):
    done = DeviceResult(status="success")
    lifecycle.record_follow_up(following, outcomes.outcome_of_device_result(done, expired=False), done)

    failed = DeviceResult(status="failure")
    assert not lifecycle.record_follow_up(following, outcomes.outcome_of_device_result(failed, expired=False), failed)
    assert Run.objects.get(pk=following.pk).status == Status.DONE


def test_the_follow_up_reads_only_due_runs(following):
    Run.objects.filter(pk=following.pk).update(next_check_at=timezone.now() + timedelta(minutes=5))

    assert runs_follow_up() == 0


def test_the_reaper_ends_runs_no_follow_up_read_long_after_nexthinks_expiry(following, alice):
    # Its lease stuck (a pass claimed it and died) or its look not due: no follow-up pass reads it now.
    # The portal runs on classic here: no follow-up pass runs at all, the reaper still ends it.
    now = timezone.now()
    long_expired = now - timedelta(seconds=UNREAD_AFTER_SECONDS + 1)
    Run.objects.filter(pk=following.pk).update(expires_at=long_expired, next_check_at=now + timedelta(seconds=60))
    # Just past the grace: the follow-up still has its chance to read the device's own result.
    recent = make_following(alice, following.action, request_id="req-2")
    just_expired = now - timedelta(seconds=outcomes.EXPIRY_GRACE_SECONDS + 1)
    Run.objects.filter(pk=recent.pk).update(expires_at=just_expired, next_check_at=now + timedelta(seconds=60))

    report = runs_reap()

    assert report.unread == 1
    following.refresh_from_db()
    assert (following.status, following.error_code, following.next_check_at) == (
        Status.UNKNOWN,
        "RESULT_NOT_READ",
        None,
    )
    assert "could not read what happened on your device" in following.error_message
    assert following.finished_at is not None
    assert Run.objects.get(pk=recent.pk).status == Status.FOLLOWING
    assert runs_reap().unread == 0  # ended once
