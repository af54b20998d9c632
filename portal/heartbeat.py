"""Heartbeats of the background processes, for /healthz: a row each, written every settings.HEARTBEAT_SECONDS.

Written by the processes themselves (no broker round-trip per probe): the worker from a timer in its
event loop, beat from its scheduler's tick.
"""

from __future__ import annotations

import logging
import time

from celery import bootsteps
from celery.beat import PersistentScheduler
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

log = logging.getLogger(__name__)


def beat(name: str) -> None:
    from actions.models import Heartbeat

    Heartbeat.objects.update_or_create(name=name, defaults={"seen_at": timezone.now()})


def beat_from_process(name: str) -> None:
    """From a long-running process's own loop: a fresh connection if the last one went stale."""
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
    """Celery beat's own scheduler, writing beat's heartbeat as it ticks."""

    _last_beat = 0.0

    def tick(self, *args, **kwargs):
        now = time.monotonic()
        if now - self._last_beat >= settings.HEARTBEAT_SECONDS:
            beat_from_process("beat")
            self._last_beat = now
        return min(super().tick(*args, **kwargs), settings.HEARTBEAT_SECONDS)
