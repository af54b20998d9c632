"""The broker, as the domain sees it: hand a task over by its name, and count what waits in a queue.

The Celery tasks (actions/tasks.py) sit above the domain and call its services; the domain hands
work to them by name through here, so it never imports them (an import-linter contract).
"""

from __future__ import annotations

import logging

from celery import current_app
from kombu.transport import virtual

log = logging.getLogger("actions.broker")


def send(task: str, *args, countdown: float | None = None) -> None:
    """Publish `task` with `args` (routed and retried as settings say). Raises when the broker is down."""
    current_app.send_task(task, args=args, countdown=countdown)


def try_send(task: str, *args, countdown: float | None = None, what: str = "") -> bool:
    """`send`, or False and a log line when the broker cannot take it (kombu raises many types then)."""
    try:
        send(task, *args, countdown=countdown)
    except Exception:
        log.warning("%s could not be handed to the broker", what or task, exc_info=True)
        return False
    return True


def waiting(queue: str) -> int | None:
    """How many messages wait in `queue`; None when the broker cannot be asked."""
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            with conn.channel() as channel:
                if not isinstance(channel, virtual.Channel):
                    # The portal's brokers (Redis, the embedded one) are both kombu virtual transports.
                    log.warning("cannot count the waiting messages of a %s broker", type(channel).__module__)
                    return None
                # Not passive: Redis has no key for an empty queue, and a passive declare calls that missing.
                return channel.queue_declare(queue=queue).message_count
    except Exception:
        log.warning("cannot count the broker's waiting messages", exc_info=True)
        return None
