"""A real Celery worker process for the tests that need one, and a way to wait on what it does.

The worker runs `celery -A portal worker` with the test settings, against the test database of the
running test (SQLite file or PostgreSQL, see `database_url`), on the broker the test names: Redis,
or the embedded filesystem broker in the test process's PORTAL_VAR_DIR (var/test/broker/).
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
FILESYSTEM_BROKER = "filesystem://"


def database_url() -> str:
    """The test database this process uses, as a DATABASE_URL another process can open."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def process_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process that shares this process's test settings, var folder (the same
    embedded broker folder, the same test files) and test database; `extra` added last."""
    from django.conf import settings

    shared = {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PORTAL_VAR_DIR": str(settings.VAR_DIR),
        "DATABASE_URL": database_url(),
    }
    return os.environ | shared | (extra or {})


def simulator_env(url: str, password: str = "portal-demo") -> dict[str, str]:
    """The variables that point a child process at the Act API simulator at `url`."""
    return {
        "NEXTHINK_PORTAL_URL": url,
        "NEXTHINK_USERNAME": "portal",
        "NEXTHINK_PASSWORD": password,
        "NEXTHINK_DEFAULT_TIMEOUT_SECONDS": "5",
        "TEST_NEXTHINK_READ_MARGIN_SECONDS": "2",
    }


def dispatch_in_thread(run_id) -> tuple[threading.Thread, list]:
    """run_dispatch in a started thread of its own (its own database connection, closed at the end);
    the list receives its outcome."""
    from actions.runs.dispatch import run_dispatch

    outcome = []

    def dispatch():
        try:
            outcome.append(run_dispatch(run_id=run_id))
        finally:
            connection.close()

    thread = threading.Thread(target=dispatch)
    thread.start()
    return thread, outcome


def wait_for(predicate, timeout=30.0):
    """Poll `predicate` until it returns something truthy, and return that; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


class Worker:
    """`celery -A portal worker` in a subprocess; the constructor returns once it is ready."""

    def __init__(self, simulator_url: str, log_path: Path, *, broker_url: str, extra_env: dict | None = None):
        env = process_env({"CELERY_BROKER_URL": broker_url} | simulator_env(simulator_url) | (extra_env or {}))
        self.log_path = log_path
        self.log = log_path.open("w")
        command = self.command(log_path)
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while self.ready_line not in log_path.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise RuntimeError("the worker did not start:\n" + log_path.read_text())
            time.sleep(0.2)

    ready_line = "ready."

    def command(self, log_path: Path) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "threads", "--concurrency", "4"] + [
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ]

    def stop(self, sig=signal.SIGTERM):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.log.closed:
            self.log.close()


class Beat(Worker):
    """`celery -A portal beat` in a subprocess, its schedule file beside its log; ready once it ticks."""

    ready_line = "beat: Starting..."

    def command(self, log_path: Path) -> list[str]:
        schedule = log_path.with_suffix(".schedule")
        return [sys.executable, "-m", "celery", "-A", "portal", "beat", "--schedule", str(schedule)] + [
            "--loglevel",
            "INFO",
        ]
