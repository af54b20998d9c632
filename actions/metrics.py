"""What the portal counts for Prometheus: a few metrics chosen here, recorded at the existing seams.

A leaf module (plain values in, prometheus_client only): the lifecycle, the Nexthink clients, the
ticketing service, the e-mails and the sign-in hooks each call one function here, with one line.
What is a state rather than an event (runs in flight by status, the broker's backlog, the
heartbeats) is not counted here: it is read from the database and the broker when Prometheus
scrapes (actions/views/metrics.py).

Several processes (gunicorn's workers, Celery's): with ``PROMETHEUS_MULTIPROC_DIR`` set in their
environment before they start, prometheus_client writes each process's values into files in that
folder, and ``exposition`` adds them all up, so the web process's /metrics also reports what the
workers of the same host did. Without it, each process reports only its own.

Labels stay few and bounded: the action's name (curated in the admin), the platform, a status, an
endpoint from a fixed list, an error kind, a backend, an event name written in the code.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

# Seconds: a run's journey (the simulator answers in ~2 s; a busy queue or a retry takes minutes).
JOURNEY_BUCKETS = (0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)
# Seconds: one HTTP call to Nexthink, and a task's wait in the broker.
CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120)

RUNS_SUBMITTED = Counter("portal_runs_submitted", "Runs stored and handed on, by action.", ["action", "platform"])
RUNS_ENDED = Counter(
    "portal_runs_ended", "Runs that reached a final status, by action and status.", ["action", "platform", "outcome"]
)
RUN_TO_SENT = Histogram(
    "portal_run_submit_to_sent_seconds",
    "From submit to Nexthink accepting the run (sent, partial, following).",
    ["platform"],
    buckets=JOURNEY_BUCKETS,
)
RUN_TO_FINAL = Histogram(
    "portal_run_submit_to_final_seconds",
    "From submit to a final status.",
    ["platform", "outcome"],
    buckets=JOURNEY_BUCKETS,
)
QUEUE_WAIT = Histogram(
    "portal_broker_queue_wait_seconds",
    "From a task's hand-over to the broker (or its planned retry time) to a worker taking it.",
    ["queue"],
    buckets=CALL_BUCKETS,
)
NEXTHINK_CALLS = Histogram(
    "portal_nexthink_call_seconds",
    "One HTTP call to Nexthink, answered or not.",
    ["platform", "endpoint"],
    buckets=CALL_BUCKETS,
)
NEXTHINK_ERRORS = Counter(
    "portal_nexthink_errors",
    "Calls to Nexthink that failed, by kind: retryable, permanent or unknown (the action may have run).",
    ["platform", "endpoint", "kind"],
)
TOKEN_RENEWALS = Counter("portal_nexthink_token_renewals", "Infinity OAuth token requests, by outcome.", ["outcome"])
TICKETS = Counter(
    "portal_tickets", "Attempts at opening a service desk ticket, by backend and outcome.", ["backend", "outcome"]
)
EMAILS = Counter("portal_emails", "E-mails to employees about their runs, by outcome.", ["outcome"])
SIGN_IN_FAILURES = Counter("portal_sign_in_failures", "Refused password sign-ins (wrong password or locked out).")
SIGN_IN_EVENTS = Counter(
    "portal_sign_in_events", "Sign-in security events (lock-outs, refused company sign-ins...), by event.", ["event"]
)


def run_submitted(*, action: str, platform: str) -> None:
    RUNS_SUBMITTED.labels(action=action, platform=platform).inc()


def run_moved(
    *, to: str, final: bool, action: str, platform: str, created_at: datetime | None, at: datetime | None
) -> None:
    """A run's move: Nexthink accepted it (sent, partial, following), or it ended (`final`)."""
    seconds = (at - created_at).total_seconds() if at is not None and created_at is not None else None
    if to in ("sent", "partial", "following") and seconds is not None:
        RUN_TO_SENT.labels(platform=platform).observe(max(seconds, 0.0))
    if final:
        RUNS_ENDED.labels(action=action, platform=platform, outcome=to).inc()
        if seconds is not None:
            RUN_TO_FINAL.labels(platform=platform, outcome=to).observe(max(seconds, 0.0))


def queue_waited(*, queue: str, handed_at: datetime | None, due_at: datetime | None, taken_at: datetime | None) -> None:
    """A worker took a task handed to the broker at `handed_at`, due at `due_at` (a planned retry) if later."""
    since = max((at for at in (handed_at, due_at) if at is not None), default=None)
    if since is not None and taken_at is not None:
        QUEUE_WAIT.labels(queue=queue).observe(max((taken_at - since).total_seconds(), 0.0))


def nexthink_call(*, platform: str, endpoint: str, seconds: float, error_kind: str = "") -> None:
    """One call to Nexthink; `error_kind` is the ErrorKind's value when it failed (an HTTP error or none)."""
    NEXTHINK_CALLS.labels(platform=platform, endpoint=endpoint).observe(seconds)
    if error_kind:
        NEXTHINK_ERRORS.labels(platform=platform, endpoint=endpoint, kind=error_kind).inc()


@contextmanager
def token_renewal() -> Iterator[None]:
    """Around one token request: counted as ok, or error when it raises."""
    try:
        yield
    except BaseException:
        TOKEN_RENEWALS.labels(outcome="error").inc()
        raise
    TOKEN_RENEWALS.labels(outcome="ok").inc()


def ticket_attempt(*, backend: str, outcome: str) -> None:
    """outcome: created, retrying or failed."""
    TICKETS.labels(backend=backend or "none", outcome=outcome).inc()


def email_sent(*, ok: bool) -> None:
    EMAILS.labels(outcome="sent" if ok else "failed").inc()


def sign_in_failed() -> None:
    SIGN_IN_FAILURES.inc()


def sign_in_event(event: str) -> None:
    SIGN_IN_EVENTS.labels(event=event).inc()


# --- Exposition --------------------------------------------------------------------------------------
def multiprocess_dir() -> str:
    """The folder every process of this host writes its values to, or "" (each process on its own)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


class _ThisProcess(Collector):
    """The default registry (this process's metrics, and its CPU and memory), inside another registry."""

    def collect(self):
        yield from REGISTRY.collect()


def exposition(extra: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The text Prometheus reads, and its content type: every process's metrics, then `extra`
    (the collectors that read a state at scrape time)."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST
