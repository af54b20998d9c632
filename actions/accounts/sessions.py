"""Django's database sessions, read with a query compiled once per process.

Every signed-in request reads its session first; Django's store builds and compiles that query with
the ORM each time (``Session.objects.get(...)``), about a third of the CPU of the bare signed-in
request (bench/README.md). Here the same ORM query is compiled once (actions/compiled.py) and each
request binds its key and the time. Writing, creating, deleting and expiring are Django's own.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from actions.compiled import compiled_rows


def _session_data(session_key: str, now: datetime):
    return Session.objects.filter(session_key=session_key, expire_date__gt=now).values_list("session_data")


class SessionStore(DatabaseSessionStore):
    """settings.SESSION_ENGINE: ``actions.accounts.sessions``."""

    def load(self):
        rows = compiled_rows(_session_data, self.session_key, timezone.now())
        if not rows:  # none, or expired: as Django's store, a new empty session under a new key
            self._session_key = None
            return {}
        return self.decode(rows[0][0])
