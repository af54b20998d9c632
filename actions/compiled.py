"""Hot reads whose SQL the ORM compiles once per process: each call only binds its values.

Building and compiling a query with Exists and OuterRef costs the ORM about a millisecond, often more
than the database takes to answer it (bench/README.md, figure 0 and figure 1). The query stays
written once, with the ORM, in a function that builds it from its values (`build`): the catalog's
pages, the action page and the dispatch's re-checks (`compiled_rows`).

How, with public APIs only:
1. The first call per process and database vendor builds the query with placeholder values (of the
   values' types, that no row holds) and compiles it with `query.get_compiler(using).as_sql()`.
2. It keeps that SQL as the ORM wrote it, its parameters, and where each placeholder sits among
   them; each value must be there exactly once (else it is an error, not a guess).
3. Every call copies the parameters, puts its own values in those places and runs the SQL on
   Django's ordinary `connection.cursor()`: logged, counted, error-mapped and pooled as any query.

Nothing is added to the SQL by hand: what a read needs (a page's bounds, display columns) is in the
ORM query itself, and every value stays a parameter. On PostgreSQL with the pool, parameters are
bound on the server (settings.py: server_side_binding) and psycopg prepares a query once it ran
`prepare_threshold` times on a connection: these reads send the same SQL every time, so PostgreSQL
parses and plans them once per connection without being asked.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import Model, QuerySet

_compiled: dict[tuple[Callable, str, str], tuple[str, tuple, list[tuple[int, Callable | None]]]] = {}
_converters: dict[tuple[type[Model], str], list[tuple[int, Callable, Any]]] = {}


def _placeholder(value: Any, n: int) -> Any:
    """A value of the same type that no row holds: it marks where `value` goes among the parameters."""
    if isinstance(value, uuid.UUID):
        return uuid.UUID(int=0xDEADBEEF00000000 + n)
    if isinstance(value, int) and not isinstance(value, bool):
        return -2_147_483_000 - n
    if isinstance(value, str):
        return f"\x01compiled-placeholder-{n}\x01"
    if isinstance(value, datetime):
        return datetime(1901, 2, 3, tzinfo=UTC) + timedelta(microseconds=4567 + n)
    raise TypeError(f"compiled_rows binds UUIDs, integers, text and datetimes, not {type(value).__name__}")


def compiled_rows(build: Callable[..., QuerySet], *values: Any, using: str = "default") -> list[tuple]:
    """The rows of `build(*values)` (a values_list query taking each value exactly once), compiled once."""
    connection = connections[using]
    # The platform too: the catalog's rule depends on it (classic hides workflows).
    key = (build, connection.vendor, settings.NEXTHINK_PLATFORM)
    if key not in _compiled:
        _compiled[key] = _compile(build, values, using)
    sql, params, slots = _compiled[key]
    bound = list(params)
    for value, (slot, convert) in zip(values, slots, strict=True):
        bound[slot] = convert(value) if convert else value
    with connection.cursor() as cursor:
        cursor.execute(sql, bound)
        return cursor.fetchall()


def compiled_instances[M: Model](
    model: type[M], build: Callable[..., QuerySet], *values: Any, related: tuple[str, ...] = ()
) -> list[M]:
    """The instances of `model` that `build(*values)` reads, compiled once, with their `related`
    objects as select_related gives them: `build` gives a values_list of `joined_columns(model,
    related)`. Each value read goes through the database's and the field's converters, as the ORM's
    own reads do (SQLite's datetimes made aware, for one); each instance is made with
    `Model.from_db` and each related object (or its absence) cached on it, as select_related does."""
    connection = connections["default"]
    parts = [
        (None, model),
        *((model._meta.get_field(name), model._meta.get_field(name).related_model) for name in related),
    ]
    names = joined_columns(model, related)
    instances = []
    for row in compiled_rows(build, *values):
        if len(row) != len(names):
            raise RuntimeError(f"{build.__qualname__} must read {len(names)} columns, not {len(row)}")
        start, made = 0, []
        for _field, part in parts:
            columns = concrete_columns(part)
            loaded = list(row[start : start + len(columns)])
            start += len(columns)
            for n, convert, column in _converters_of(part, connection):
                loaded[n] = convert(loaded[n], column, connection)
            pk = loaded[[f.attname for f in part._meta.concrete_fields].index(part._meta.pk.attname)]
            made.append(None if pk is None else part.from_db("default", columns, loaded))
        instance = made[0]
        for (field, _part), other in zip(parts[1:], made[1:], strict=True):
            field.set_cached_value(instance, other)  # as select_related: also None, so no query follows
            if other is not None and (field.one_to_one or not field.concrete):
                field.remote_field.set_cached_value(other, instance)
        instances.append(instance)
    return instances


def _converters_of(model: type[Model], connection) -> list[tuple[int, Callable, Any]]:
    key = (model, connection.vendor)
    if key not in _converters:
        columns = [field.get_col(model._meta.db_table) for field in model._meta.concrete_fields]
        _converters[key] = [
            (n, convert, column)
            for n, (field, column) in enumerate(zip(model._meta.concrete_fields, columns, strict=True))
            for convert in (*connection.ops.get_db_converters(column), *field.get_db_converters(connection))
        ]
    return _converters[key]


def concrete_columns(model: type[Model]) -> list[str]:
    """What `compiled_instances` reads: every concrete field's attribute name, in the model's order."""
    return [field.attname for field in model._meta.concrete_fields]


def joined_columns(model: type[Model], related: tuple[str, ...] = ()) -> list[str]:
    """`concrete_columns` of `model`, then of each of its `related` objects (`name__column`)."""
    columns = concrete_columns(model)
    for name in related:
        columns += [f"{name}__{column}" for column in concrete_columns(model._meta.get_field(name).related_model)]
    return columns


def _compile(
    build: Callable[..., QuerySet], values: tuple, using: str
) -> tuple[str, tuple, list[tuple[int, Callable | None]]]:
    placeholders = [_placeholder(value, n) for n, value in enumerate(values)]
    sql, params = build(*placeholders).query.get_compiler(using).as_sql()
    adapt = connections[using].ops.adapt_datetimefield_value
    found = _slots_of(params, placeholders, build.__qualname__, adapt)
    converters = [
        _converter(params[slot], placeholder, adapt) for slot, placeholder in zip(found, placeholders, strict=True)
    ]
    return sql, tuple(params), list(zip(found, converters, strict=True))


def _converter(param: Any, placeholder: Any, adapt: Callable) -> Callable | None:
    """How a value takes the form the ORM gave its placeholder among the parameters, if another."""
    if isinstance(placeholder, uuid.UUID) and not isinstance(param, uuid.UUID):
        return lambda value: value.hex  # SQLite stores a UUID as 32 hexadecimal characters
    if isinstance(placeholder, datetime):
        # As the ORM adapts it for the database (SQLite: naive UTC text; PostgreSQL: itself).
        return None if isinstance(param, datetime) else adapt
    if type(param) is not type(placeholder):
        # As the ORM typed it (psycopg's Int4): so that a page's bounds, small or large, keep one
        # type from call to call, and PostgreSQL one prepared statement.
        return type(param)
    return None


def _slots_of(params, placeholders, what: str, adapt: Callable) -> list[int]:
    """Where each placeholder sits among a compiled query's parameters; each must be there exactly once."""
    slots = []
    for placeholder in placeholders:
        # PostgreSQL takes a UUID and a datetime themselves; SQLite stores a UUID as 32 hexadecimal
        # characters and a datetime as text.
        if isinstance(placeholder, uuid.UUID):
            forms: tuple = (placeholder, placeholder.hex)
        elif isinstance(placeholder, datetime):
            forms = (placeholder, adapt(placeholder))
        else:
            forms = (placeholder,)
        found = [i for i, p in enumerate(params) if p in forms]
        if len(found) != 1:
            raise RuntimeError(f"{what} must take each value exactly once, not {len(found)} times")
        slots.append(found[0])
    return slots
