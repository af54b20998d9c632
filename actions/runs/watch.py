"""Watching a run for next to nothing: the run page's "anything new?" answered without the database.

Every change to what the status JSON shows of a run in flight gives the run a new random version in
the cache that every web and worker process shares (``CACHES["shared"]``), once the change is
committed (`changed`). The status JSON of a run in flight carries an ETag that binds that version to
the run, the browser's session and the moment until which time alone cannot change the answer (the
"taking longer than usual" notice, at most two minutes ahead); the page sends it back as If-None-Match,
and while all three still hold the answer is "304 Not Modified", given before any session, user or
run is read (`not_modified`, from actions/views/watch.py's middleware). Only a run in flight gets a
tag: the page stops looking once the run is final, so the final answer's ticket, feedback and "run
again" never need one.

Why a 304 cannot leak: only the portal makes the tag (an HMAC with SECRET_KEY), and it makes one only
for an answer it gave in full to that session for its own run. Another session, or another run, gets
the whole path (and its 404). A session signed out or expired since gets "unchanged" for what it
was already shown, until the run next changes or the tag's two minutes end: then the whole path sends
it to the sign-in page.

The version is read before the run (`version`), and bumped only after the change is committed: a poll
that reads the new row under the old version merely gets one more full answer.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time

from django.core.cache import caches
from django.db import transaction
from django.utils.crypto import salted_hmac

VERSION_SECONDS = 24 * 3600  # a run followed longer than this gets a new version: one full answer more
FRESH_SECONDS = 120  # at most this long on one tag: anything else the answer shows (labels, preferences)
_SALT = "actions.runs.watch"
log = logging.getLogger("actions.runs")


def _key(run_id) -> str:
    return f"run-version:{run_id}"


def changed(run_id) -> None:
    """The status JSON of this run may read differently: a new version once the transaction commits.

    If the cache cannot be reached then, the failure is logged (robust): a page may then be told
    "unchanged" for at most FRESH_SECONDS, the longest any tag holds.
    """
    transaction.on_commit(
        lambda: caches["shared"].set(_key(run_id), secrets.token_hex(8), VERSION_SECONDS), robust=True
    )


def version(run_id) -> str:
    """The run's current version (made now if the cache has none). Read it before the run."""
    cache = caches["shared"]
    try:
        current = cache.get(_key(run_id))
        if current is None:
            cache.add(_key(run_id), secrets.token_hex(8), VERSION_SECONDS)
            current = cache.get(_key(run_id), "")
    except Exception:  # noqa: BLE001 - the cache down: answers in full, untagged, as before
        log.warning("shared cache unreachable: run %s's status answered without a tag", run_id, exc_info=True)
        return ""
    return current


def etag(run_id, session_key: str, current: str, *, fresh_until: float | None = None) -> str:
    """The tag of an answer given in full to `session_key`, valid until `fresh_until` (Unix time);
    "" when there is nothing to bind it to (no session, no version)."""
    if not (session_key and current):
        return ""
    until = int(min(fresh_until or float("inf"), time.time() + FRESH_SECONDS))
    return f'"{until}-{_sign(run_id, session_key, current, until)}"'


def not_modified(run_id, session_key: str, if_none_match: str) -> bool:
    """True when `if_none_match` is this session's tag of this run's current version, still fresh."""
    tag = if_none_match.strip().removeprefix("W/").strip('"')
    until, _, signature = tag.partition("-")
    if not (session_key and until.isdigit() and signature) or int(until) <= time.time():
        return False
    try:
        current = caches["shared"].get(_key(run_id))
    except Exception:  # noqa: BLE001 - the cache down: the whole path answers
        return False
    return current is not None and hmac.compare_digest(signature, _sign(run_id, session_key, current, int(until)))


def _sign(run_id, session_key: str, current: str, until: int) -> str:
    return salted_hmac(_SALT, f"{run_id}|{session_key}|{current}|{until}", algorithm="sha256").hexdigest()[:32]
