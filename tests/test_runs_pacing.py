"""The run page's first poll: when runs of its action usually end, between one and five seconds."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from actions.models import Run
from actions.runs.pacing import (
    FIRST_POLL_MARGIN_SECONDS,
    FIRST_POLL_MAX_SECONDS,
    FIRST_POLL_MIN_SECONDS,
    first_poll_ms,
    first_poll_seconds,
    typical_seconds,
)
from actions.runs.submit import run_submit
from tests.factories import make_action, make_device, make_sim_action


@pytest.fixture
def no_cooldown_action():
    """The simulator's "Clear Teams cache" of no parameter, with no cooldown between runs."""
    return make_sim_action(slug="clear-teams-cache", cooldown_minutes=0)


def finished_runs(user, action, device, seconds: list[float]) -> None:
    """Runs of the action that each took `seconds` from submit to final, the latest last."""
    start = timezone.now() - timedelta(hours=1)
    for i, took in enumerate(seconds):
        run = run_submit(user=user, action=action, device=device, params={})
        created = start + timedelta(minutes=i)
        Run.objects.filter(pk=run.pk).update(
            status=Run.Status.SENT, created_at=created, finished_at=created + timedelta(seconds=took)
        )


def new_run(user, action, device) -> Run:
    run = run_submit(user=user, action=action, device=device, params={})
    return Run.objects.get(pk=run.pk)


def test_nothing_known_keeps_the_one_second_the_page_always_waited(alice, no_cooldown_action):
    run = new_run(alice, no_cooldown_action, make_device(alice))

    assert typical_seconds(run) is None
    assert first_poll_ms(run) == 1000


def test_it_waits_for_the_median_of_the_actions_latest_finished_runs(alice, no_cooldown_action):
    device = make_device(alice)
    finished_runs(alice, no_cooldown_action, device, [2.0, 3.0, 100.0])  # one slow outlier does not move the median
    run = new_run(alice, no_cooldown_action, device)

    assert typical_seconds(run) == pytest.approx(3.0)
    assert first_poll_ms(run) == pytest.approx((3.0 + FIRST_POLL_MARGIN_SECONDS) * 1000, abs=100)


def test_the_run_s_own_age_counts():
    assert first_poll_seconds(3.0, elapsed=1.5) == pytest.approx(1.5 + FIRST_POLL_MARGIN_SECONDS)
    assert first_poll_seconds(3.0, elapsed=60.0) == FIRST_POLL_MIN_SECONDS  # late: ask at once, as before


def test_it_never_waits_more_than_five_seconds_nor_less_than_one():
    assert first_poll_seconds(600.0, elapsed=0.0) == FIRST_POLL_MAX_SECONDS
    assert first_poll_seconds(0.05, elapsed=0.0) == FIRST_POLL_MIN_SECONDS


def test_only_this_action_s_finished_runs_count(alice, no_cooldown_action):
    device = make_device(alice)
    other = make_action(name=no_cooldown_action.name, slug="teams-cache-copy", cooldown_minutes=0)  # same name
    finished_runs(alice, other, device, [8.0, 8.0])
    new_run(alice, no_cooldown_action, device)  # not finished: no time to count
    run = new_run(alice, no_cooldown_action, device)

    assert typical_seconds(run) is None


def test_it_is_read_once_a_minute_per_action_not_per_page(alice, no_cooldown_action, django_assert_num_queries):
    device = make_device(alice)
    finished_runs(alice, no_cooldown_action, device, [2.0])
    run = new_run(alice, no_cooldown_action, device)
    cache.clear()
    with django_assert_num_queries(1):
        typical_seconds(run)
    with django_assert_num_queries(0):
        typical_seconds(run)


def test_the_run_page_hands_its_first_delay_to_the_script(client, alice, no_cooldown_action):
    device = make_device(alice)
    finished_runs(alice, no_cooldown_action, device, [4.0])
    run = new_run(alice, no_cooldown_action, device)
    client.force_login(alice)

    page = client.get(run.get_absolute_url()).content.decode()

    delay = int(page.split('data-first-poll-ms="', 1)[1].split('"', 1)[0])
    assert 3000 < delay <= (4.0 + FIRST_POLL_MARGIN_SECONDS) * 1000
