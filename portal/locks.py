"""Locks shared by every machine of one installation, in the broker's Redis (redis-py's Lock).

Two uses:
- `BeatLeader`: with several beat processes (one per machine, for availability) only the one holding
  the leader lock schedules; it renews the lock on every tick, and when it dies the lock expires after
  BEAT_LEADER_SECONDS and another beat takes over at its next look (a third of that, at most 5 s, later).
- `held(name, seconds)`: a periodic pass (the reaper, the follow-up, the ticket sweep, the Engine sync)
  runs only where it got the pass's lock, so two workers never run the same pass at once, even when a
  pass lasts longer than its period or two beats sent it. A thread renews the lock while the pass runs;
  a worker that dies mid-pass frees it after `seconds`.

The embedded broker (`filesystem://`, the demo) has no Redis: every lock is granted, as it is meant
for one machine. If Redis does not answer, no lock is granted: nothing is scheduled or swept until it
is back (the broker is down then too, and the database's claims keep every run and ticket sent once).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache

import redis
from celery import current_app
from django.conf import settings
from redis.lock import Lock

log = logging.getLogger(__name__)
PREFIX = "fix-my-device:lock:"


@cache
def _client(url: str) -> redis.Redis | None:
    if not url.startswith(("redis://", "rediss://")):
        return None  # the embedded broker: one machine, every lock granted
    return redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)


def client() -> redis.Redis | None:
    """The Redis this process's Celery publishes to, or None with the embedded broker."""
    return _client(current_app.conf.broker_url or settings.CELERY_BROKER_URL)


def _lock(connection: redis.Redis, name: str, seconds: float) -> Lock:
    # thread_local=False: the renewing thread must see the token the acquiring thread got.
    return connection.lock(PREFIX + name, timeout=seconds, blocking=False, thread_local=False)


@contextmanager
def held(name: str, seconds: float) -> Iterator[bool]:
    """Yields whether this process holds the lock `name` (False: another holds it, or Redis is down).

    Held, it is renewed every `seconds` / 3 until the block ends, and released then.
    """
    connection = client()
    if connection is None:
        yield True
        return
    lock = _lock(connection, name, seconds)
    try:
        got = lock.acquire()
    except redis.RedisError:
        log.warning("lock %s: Redis does not answer; the pass is skipped", name, exc_info=True)
        got = False
    if not got:
        yield False
        return
    done = threading.Event()

    def renew() -> None:
        while not done.wait(seconds / 3):
            try:
                lock.reacquire()
            except Exception:  # lost (expired, or Redis was down): the database's claims still hold
                log.warning("lock %s could not be renewed", name, exc_info=True)
                return

    renewer = threading.Thread(target=renew, name=f"lock-{name}", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        done.set()
        renewer.join()
        try:
            lock.release()
        except Exception:  # expired meanwhile, or Redis is down: it expires by itself
            log.warning("lock %s was no longer held at the end of the pass", name)


def identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class BeatLeader:
    """Whether this beat process is the one that schedules; ask `is_leader()` on every tick."""

    NAME = "beat-leader"

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = seconds or settings.BEAT_LEADER_SECONDS
        self.leading = False
        connection = client()
        self.lock = _lock(connection, self.NAME, self.seconds) if connection is not None else None

    @property
    def poll_seconds(self) -> float:
        """How long a tick may sleep: the leader renews, and a standby looks, this often."""
        return min(self.seconds / 3, 5.0)

    def is_leader(self) -> bool:
        if self.lock is None:
            return True  # the embedded broker: one machine, one beat
        was = self.leading
        try:
            if self.leading:
                try:
                    self.lock.reacquire()
                except redis.exceptions.LockError:  # it expired (and another may hold it now)
                    self.leading = False
            if not self.leading:
                self.leading = bool(self.lock.acquire())
        except redis.RedisError:
            # Nothing is scheduled while Redis (the broker) is down. A leader keeps its token: its lock
            # is renewed once Redis is back, if Redis kept it; otherwise the first beat to look takes it.
            log.warning("beat: Redis does not answer; not scheduling", exc_info=True)
            return False
        if self.leading != was:
            log.warning("beat %s: %s", identity(), "now the leader: scheduling" if self.leading else "standing by")
        return self.leading

    def resign(self) -> None:
        """At exit: let another beat take over at its next look rather than after the lock expires."""
        if self.lock is not None and self.leading:
            self.leading = False
            with suppress(redis.RedisError):
                self.lock.release()
