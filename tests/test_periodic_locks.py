"""The locks in Redis that keep each periodic pass single and let one beat of several schedule (portal/locks.py).

Needs the Redis server (REDIS_URL, flushed); skipped with the reason when it is unreachable, failed under CI=true.
"""

import time

import pytest

from actions import tasks
from portal import locks
from tests.conftest import REDIS_URL
from tests.worker import wait_for

PASSES = [
    ("reap-runs", tasks.reap_runs),
    ("sweep-tickets", tasks.sweep_tickets),
    ("follow-up-runs", tasks.follow_up_runs),
    ("sync-engines", tasks.sync_engines_task),
]


@pytest.fixture
def redis_locks(redis_broker):
    """This process's locks are in Redis, as on every machine of an installation."""
    return locks.client()


@pytest.mark.redis
@pytest.mark.parametrize(("name", "task"), PASSES, ids=[name for name, _ in PASSES])
def test_a_pass_that_another_worker_runs_is_not_run_again(redis_locks, name, task):
    with locks.held(name, 30) as mine:
        assert mine
        assert task() is None  # the copy a second worker took does nothing
        assert redis_locks.exists(locks.PREFIX + name)  # and leaves the first one's lock alone


@pytest.mark.redis
@pytest.mark.django_db
def test_the_reaper_runs_once_the_other_pass_ended(redis_locks):
    with locks.held("reap-runs", 30):
        pass
    assert tasks.reap_runs() == {"requeued": 0, "marked_unknown": 0, "expired": 0, "unread": 0}
    assert not redis_locks.exists(locks.PREFIX + "reap-runs")


@pytest.mark.redis
def test_a_pass_longer_than_its_lock_keeps_it(redis_locks):
    with locks.held("long-pass", 2) as mine:
        assert mine
        time.sleep(5)  # more than twice the lock's time: it lives only because it is renewed
        with locks.held("long-pass", 2) as other:
            assert not other


@pytest.mark.redis
def test_the_lock_of_a_worker_that_died_mid_pass_frees_itself(redis_locks):
    redis_locks.set(locks.PREFIX + "reap-runs", "dead-worker", px=1500)  # taken, and never renewed

    def free() -> bool:
        with locks.held("reap-runs", 30) as mine:
            return mine

    assert not free()
    assert wait_for(free, timeout=15)


def test_the_embedded_broker_grants_every_lock(settings):
    assert not settings.CELERY_BROKER_URL.startswith("redis")
    with locks.held("reap-runs", 30) as first, locks.held("reap-runs", 30) as second:
        assert first and second
    assert locks.BeatLeader().is_leader() and locks.BeatLeader().is_leader()


@pytest.mark.redis
def test_one_beat_leads_and_another_takes_over_when_it_stops_renewing(redis_locks):
    first, second = locks.BeatLeader(2), locks.BeatLeader(2)
    assert first.is_leader()
    assert not second.is_leader()
    assert first.is_leader()  # renewing

    # The first beat dies (it renews no more): the second leads once the lock has expired.
    wait_for(second.is_leader, timeout=15)
    assert not first.is_leader()  # back from a long pause, it finds the lock taken and stands by


@pytest.mark.redis
def test_a_beat_that_stops_hands_over_at_once(redis_locks):
    first, second = locks.BeatLeader(30), locks.BeatLeader(30)
    assert first.is_leader() and not second.is_leader()
    first.resign()
    assert second.is_leader()


def test_a_leader_whose_redis_is_down_does_not_schedule(use_broker):
    use_broker(f"redis://127.0.0.1:9/{REDIS_URL.rsplit('/', 1)[-1]}")  # nothing listens there
    assert not locks.BeatLeader(2).is_leader()
    with locks.held("reap-runs", 30) as mine:
        assert not mine


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)  # beat's heartbeat closes stale connections, as in its process
def test_a_beat_standing_by_schedules_nothing_until_the_leader_stops(redis_locks, monkeypatch, settings, tmp_path):
    from celery.beat import PersistentScheduler

    from actions.models import Heartbeat
    from portal.celery import app
    from portal.heartbeat import HeartbeatScheduler

    scheduled = []  # the schedulers whose own tick ran: those that send the due tasks
    monkeypatch.setattr(PersistentScheduler, "tick", lambda self, *args, **kwargs: scheduled.append(self) or 1.0)
    leader, standby = (HeartbeatScheduler(app=app, schedule_filename=str(tmp_path / name)) for name in "ab")

    alive = settings.VAR_DIR / "beat.alive"  # what the container's health check reads
    leader.tick()
    assert Heartbeat.objects.filter(name="beat").exists()  # written by the leader
    alive.unlink()
    standby.tick()
    assert scheduled == [leader]
    assert alive.exists()  # the standby is alive too

    leader.close()  # stopped: it hands over
    standby.tick()
    assert scheduled == [leader, standby]
    standby.close()
