"""Hot reads whose SQL the ORM compiles once per process: each call only binds its values.

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

_compiled: dict[tuple[Callable, str], tuple[str, tuple, list[tuple[int, bool]]]] = {}


def _placeholder(value: Any, n: int) -> Any:
    """A value of the same type that no row holds: it marks where `value` goes among the parameters."""
    if isinstance(value, uuid.UUID):
        return uuid.UUID(int=0xDEADBEEF00000000 + n)
    if isinstance(value, int) and not isinstance(value, bool):
        return -2_147_483_000 - n
    if isinstance(value, str):
        return f"\x01compiled-placeholder-{n}\x01"
    raise TypeError(f"compiled_rows binds UUIDs, integers and text, not {type(value).__name__}")


def compiled_rows(build: Callable[..., QuerySet], *values: Any, using: str = "default") -> list[tuple]:
    """The rows of `build(*values)` (a values_list query taking each value exactly once), compiled once."""
    key = (build, connections[using].vendor)
    if key not in _compiled:
        _compiled[key] = _compile(build, values, using)
    sql, params, slots = _compiled[key]
    bound = list(params)
    for value, (slot, as_hex) in zip(values, slots, strict=True):
        bound[slot] = value.hex if as_hex else value
    with connections[using].cursor() as cursor:
        cursor.execute(sql, bound)
        return cursor.fetchall()


def _compile(build: Callable[..., QuerySet], values: tuple, using: str) -> tuple[str, tuple, list[tuple[int, bool]]]:
    placeholders = [_placeholder(value, n) for n, value in enumerate(values)]
    sql, params = build(*placeholders).query.get_compiler(using).as_sql()
    slots = []
    for placeholder in placeholders:
        # PostgreSQL takes a UUID itself; SQLite stores it as 32 hexadecimal characters.
        forms = (placeholder, placeholder.hex) if isinstance(placeholder, uuid.UUID) else (placeholder,)
        found = [i for i, p in enumerate(params) if p in forms]
        if len(found) != 1:
            raise RuntimeError(f"{build.__qualname__} must take each value exactly once, not {len(found)} times")
        slots.append((found[0], params[found[0]] != placeholder))
    return sql, tuple(params), slots
