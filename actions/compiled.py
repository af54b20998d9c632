"""Hot reads whose SQL the ORM compiles once per process: each call only binds its values.

Building and compiling a query with Exists and OuterRef costs the ORM about a millisecond, often more
than the database takes to answer it (bench/README.md, figure 0 and figure 1). The query stays
written once, with the ORM, in the function that builds it; only its compiled form is kept, with
where each value goes among its parameters, and it runs on `prepared_cursor`: the catalog's pages,
the action page and the dispatch's re-checks (`compiled_rows`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
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


def compiled_rows(
    build: Callable[..., QuerySet],
    *values: Any,
    shape: Callable[[str], str] | None = None,
    extra: tuple = (),
    using: str = "default",
) -> list[tuple]:
    """The rows of `build(*values)` (a values_list query taking each value exactly once), compiled once.

    `shape` rewrites the compiled SQL once, around it or after it (the catalog wraps its first page's
    query, and appends LIMIT and OFFSET to a page's); `extra` are the values of what it appended.
    """
    key = (build, connections[using].vendor)
    if key not in _compiled:
        _compiled[key] = _compile(build, values, using, shape)
    sql, params, slots = _compiled[key]
    bound = list(params)
    for value, (slot, as_hex) in zip(values, slots, strict=True):
        bound[slot] = value.hex if as_hex else value
    with prepared_cursor(using) as cursor:
        cursor.execute(sql, [*bound, *extra])
        return cursor.fetchall()


def _compile(
    build: Callable[..., QuerySet], values: tuple, using: str, shape: Callable[[str], str] | None
) -> tuple[str, tuple, list[tuple[int, bool]]]:
    placeholders = [_placeholder(value, n) for n, value in enumerate(values)]
    sql, params = build(*placeholders).query.get_compiler(using).as_sql()
    found = _slots_of(params, placeholders, build.__qualname__)
    as_hex = [params[slot] != placeholder for slot, placeholder in zip(found, placeholders, strict=True)]
    return shape(sql) if shape else sql, tuple(params), list(zip(found, as_hex, strict=True))


def _slots_of(params, placeholders, what: str) -> list[int]:
    """Where each placeholder sits among a compiled query's parameters; each must be there exactly once."""
    slots = []
    for placeholder in placeholders:
        # PostgreSQL takes a UUID itself; SQLite stores it as 32 hexadecimal characters.
        forms = (placeholder, placeholder.hex) if isinstance(placeholder, uuid.UUID) else (placeholder,)
        found = [i for i, p in enumerate(params) if p in forms]
        if len(found) != 1:
            raise RuntimeError(f"{what} must take each value exactly once, not {len(found)} times")
        slots.append(found[0])
    return slots


def prepared_cursor(using: str = "default"):
    """Django's cursor, or on PostgreSQL with the portal's pool one that prepares the query at once.

    PostgreSQL then parses and plans it once per pooled connection instead of on every call: that
    was half of the catalog's cost (bench/README.md, figure 1). With the pool, Django's own cursors
    bind on the server too (settings.py: server_side_binding) and psycopg prepares their queries
    after 5 runs on a connection; these hot reads do not wait for that. The cursor is still wrapped
    by Django: logged, counted and error-mapped as usual. Only with the pool, whose connections go
    straight to PostgreSQL: a transaction-mode pooler in between (DATABASE_POOL_MAX_SIZE=0 and
    PgBouncer) may not keep prepared statements.
    """
    connection = connections[using]
    if connection.vendor != "postgresql" or not connection.settings_dict["OPTIONS"].get("pool"):
        return connection.cursor()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(_PreparedCursor(connection.connection))


class _PreparedCursor(psycopg.Cursor):
    def execute(self, query, params=None, **kwargs):
        return super().execute(query, params, prepare=True, **kwargs)
