"""Hot reads whose SQL the ORM compiles once per process: each call only binds its one parameter.

Building and compiling a query with Exists and OuterRef costs the ORM about a millisecond, often more
than the database takes to answer it (bench/README.md, "What one run costs"). The query stays
written once, with the ORM, in the function that builds it; only its compiled form is kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.models import QuerySet

_compiled: dict[tuple[Callable, str], tuple[str, tuple, int, bool]] = {}
PLACEHOLDER = uuid.UUID("00000000-dead-beef-0000-000000000000")  # no row has this id


def compiled_rows(build: Callable[[Any], QuerySet], value: uuid.UUID, *, using: str = "default") -> list[tuple]:
    """The rows of `build(value)` (a values_list query taking `value` exactly once), compiled once."""
    key = (build, connections[using].vendor)
    if key not in _compiled:
        _compiled[key] = _compile(build, using)
    sql, params, slot, as_hex = _compiled[key]
    bound = list(params)
    bound[slot] = value.hex if as_hex else value
    with connections[using].cursor() as cursor:
        cursor.execute(sql, bound)
        return cursor.fetchall()


def _compile(build: Callable[[Any], QuerySet], using: str) -> tuple[str, tuple, int, bool]:
    sql, params = build(PLACEHOLDER).query.get_compiler(using).as_sql()
    # PostgreSQL takes the UUID itself; SQLite stores it as 32 hexadecimal characters.
    slots = [i for i, p in enumerate(params) if p in (PLACEHOLDER, PLACEHOLDER.hex)]
    if len(slots) != 1:
        raise RuntimeError(f"{build.__qualname__} must take its value exactly once, not {len(slots)} times")
    return sql, tuple(params), slots[0], params[slots[0]] == PLACEHOLDER.hex
