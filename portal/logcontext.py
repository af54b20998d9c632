"""Which request and which run a log line concerns: ``request_id`` and ``run_id`` on every record.

The ids live in context variables (one value per thread, and per task of the threads pool): the
middleware binds the request's id (a well-formed ``X-Request-ID`` from the proxy, or a new one, sent
back in the answer) and, on the pages of one run, the run's id; the Celery signals bind the run's id
of the tasks that take one, and the id of the request that handed the task over. The filter copies
them onto each record ("-" when none), so the plain format and the JSON format (``LOG_FORMAT=json``,
python-json-logger) both can show them. A leaf module: logging, contextvars and python-json-logger.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="")
RUN_ID: ContextVar[str] = ContextVar("run_id", default="")
# What a proxy may send as X-Request-ID and be kept: short, printable, no spaces (it lands in logs).
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{8,64}")
# Celery tasks whose first argument is a run's id.
RUN_TASKS = frozenset({"actions.tasks.dispatch_run", "actions.tasks.notify_run_ended"})
HEADER = "request_id"  # the Celery message header that carries the request's id to the worker


def new_request_id(offered: str | None = None) -> str:
    return offered if offered and _WELL_FORMED.fullmatch(offered) else uuid.uuid4().hex


@contextmanager
def bound(*, request_id: str | None = None, run_id=None) -> Iterator[None]:
    """Within the block, log lines carry these ids (the ones not given keep their current value)."""
    tokens = []
    if request_id is not None:
        tokens.append((REQUEST_ID, REQUEST_ID.set(request_id)))
    if run_id is not None:
        tokens.append((RUN_ID, RUN_ID.set(str(run_id))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Adds request_id and run_id to every record (a handler's filter: it sees every line).

    Outside a run's page or task (submit, the reaper, the follow-up, tickets), a line about a run is
    written, by the portal's convention, as ``"run %s ..."`` or ``"ticket for run %s ..."`` with the
    run's id first: that id is its run_id.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        record.run_id = RUN_ID.get() or _run_named(record) or "-"
        return True


def _run_named(record: logging.LogRecord) -> str:
    if isinstance(record.msg, str) and record.msg.startswith(_ABOUT_A_RUN) and isinstance(record.args, tuple):
        return str(record.args[0])[:64] if record.args else ""
    return ""


_ABOUT_A_RUN = ("run %s", "ticket for run %s")


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: time, level, logger, message, request_id, run_id, and any ``extra``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        super().__init__("%(levelname)s %(name)s %(message)s %(request_id)s %(run_id)s", *args, **kwargs)


class RequestIdMiddleware:
    """Binds the request's id (and, on a run's pages, the run's id) for the log lines of this request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = new_request_id(request.headers.get("X-Request-ID"))
        request.request_id = request_id
        with bound(request_id=request_id, run_id=""):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = getattr(request, "resolver_match", None)
        if match is not None and (match.url_name or "").startswith("run_") and "pk" in view_kwargs:
            RUN_ID.set(str(view_kwargs["pk"]))  # reset with the request's own binding when it ends
        return None


# --- Celery ------------------------------------------------------------------------------------------
def _before_publish(sender=None, headers=None, **kwargs) -> None:
    request_id = REQUEST_ID.get()
    if request_id and headers is not None:
        headers[HEADER] = request_id


_task_tokens: dict[str, list] = {}


def _task_started(sender=None, task_id=None, task=None, args=None, **kwargs) -> None:
    request_id = getattr(task.request, HEADER, None) if task is not None else None
    tokens = [(REQUEST_ID, REQUEST_ID.set(request_id or ""))]
    run_id = args[0] if sender is not None and sender.name in RUN_TASKS and args else ""
    tokens.append((RUN_ID, RUN_ID.set(str(run_id))))
    _task_tokens[task_id] = tokens


def _task_ended(sender=None, task_id=None, **kwargs) -> None:
    for var, token in reversed(_task_tokens.pop(task_id, [])):
        try:
            var.reset(token)
        except ValueError:  # set in another context: clear it instead
            var.set("")


def connect_celery() -> None:
    """Bind the ids around each task (called once, by the Celery app)."""
    from celery.signals import before_task_publish, task_postrun, task_prerun

    before_task_publish.connect(_before_publish, weak=False, dispatch_uid="portal.logcontext.publish")
    task_prerun.connect(_task_started, weak=False, dispatch_uid="portal.logcontext.prerun")
    task_postrun.connect(_task_ended, weak=False, dispatch_uid="portal.logcontext.postrun")
