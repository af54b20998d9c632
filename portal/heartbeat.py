"""Heartbeats of the background processes, for /healthz: a row each, written every settings.HEARTBEAT_SECONDS.

Written by the processes themselves (no broker round-trip per probe): the worker from a timer in its
event loop, beat from its scheduler's tick (the leading beat only: "beat" alive means something schedules).
Each also touches its own file, `<PORTAL_VAR_DIR>/<name>.alive`, which the container's health check
reads (`deploy/entrypoint.sh health worker`): a standing-by beat is alive too.
"""

from __future__ import annotations

import logging
import time

from celery import bootsteps
from celery.beat import PersistentScheduler
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from portal.locks import BeatLeader

log = logging.getLogger(__name__)


def beat(name: str) -> None:
    from actions.models import Heartbeat

    Heartbeat.objects.update_or_create(name=name, defaults={"seen_at": timezone.now()})


def alive_file(name: str):
    return settings.VAR_DIR / f"{name}.alive"


def touch_alive(name: str) -> None:
    try:
        alive_file(name).parent.mkdir(parents=True, exist_ok=True)
        alive_file(name).touch()
    except OSError:
        log.warning("%s not written", alive_file(name), exc_info=True)


def beat_from_process(name: str) -> None:
    """From a long-running process's own loop: a fresh connection if the last one went stale."""
    touch_alive(name)
    try:
        close_old_connections()
        beat(name)
    except Exception:  # the database is down: /healthz says so on its own
        log.warning("heartbeat of %s not written", name, exc_info=True)


class WorkerHeartbeat(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def start(self, worker):
        beat_from_process("worker")
        self.timer = worker.timer.call_repeatedly(
            settings.HEARTBEAT_SECONDS, beat_from_process, ("worker",), priority=10
        )

    def stop(self, worker):
        if getattr(self, "timer", None) is not None:
            self.timer.cancel()


class HeartbeatScheduler(PersistentScheduler):
    """Celery beat's own scheduler, scheduling only while it is the leader (portal/locks.py), and
    writing beat's heartbeat as it ticks. Several beats may run (one per machine): one schedules, the
    others stand by and take over within BEAT_LEADER_SECONDS + 5 s of its death."""

    _last_beat = _last_alive = 0.0
    leader: BeatLeader | None = None

    def tick(self, *args, **kwargs):
        if self.leader is None:
            self.leader = BeatLeader()
        leading = self.leader.is_leader()
        now = time.monotonic()
        if leading and now - self._last_beat >= settings.HEARTBEAT_SECONDS:
            beat_from_process("beat")  # at once on taking over, then every HEARTBEAT_SECONDS
            self._last_beat = self._last_alive = now
        elif now - self._last_alive >= settings.HEARTBEAT_SECONDS:
            touch_alive("beat")
            self._last_alive = now
        if not leading:
            self._last_beat = 0.0
            return self.leader.poll_seconds
        return min(super().tick(*args, **kwargs), settings.HEARTBEAT_SECONDS, self.leader.poll_seconds)

    def close(self):
        if self.leader is not None:
            self.leader.resign()
        super().close()
