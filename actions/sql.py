"""SQL that PostgreSQL can plan well once for any values: the code's constants written into it, and
a name's start as a range of bytes.

With the pool, parameters are bound on the server and a statement is prepared after it ran a few
times on a connection (portal/settings.py). From its sixth run as a prepared statement, PostgreSQL
may switch to a *generic* plan, made once without looking at the values. Such a plan
- cannot use a partial index whose condition depends on a value (`idempotency_key <> ''`,
  `status = 'following'`): a parameter might be the one value the index leaves out;
- estimates `status = $1` as common as the average status, when "queued" or "sending" are a handful
  of rows among millions: it reads the table in date order instead of the status index;
- cannot use an index for `LIKE $1`: the pattern might start with a wildcard.
bench/growth.py measured it: 100 ms per form POST and 0.2-5 s per reaper pass at 10^6 runs.

So the code's own constants (statuses, the empty one-time key) are written into the SQL with
`Constant`, and a name's start is compared as bytes (`starts_with`), which an index
`varchar_pattern_ops` serves whatever the value. What a request brings stays a parameter, always.
tests/test_generic_plans.py checks each hot statement's generic plan on PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.db.models import CharField, Expression, F, IntegerField, Lookup, Q

_PLAIN = re.compile(r"[A-Za-z0-9_]*")


class Constant(Expression):
    """A constant of the code written into the SQL as a literal, not bound as a parameter.

    Only plain words and integers, so that nothing needs quoting beyond the quotes themselves: a
    value from a request must never come here (ValueError).
    """

    def __init__(self, value: str | int):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError(f"Constant takes a word or an integer, not {type(value).__name__}")
        if isinstance(value, str) and not _PLAIN.fullmatch(value):
            raise ValueError(f"Constant takes letters, digits and underscores only, not {value!r}")
        super().__init__(output_field=IntegerField() if isinstance(value, int) else CharField())
        self.value = str(value) if isinstance(value, str) else int(value)  # a status: its plain value

    def __repr__(self) -> str:
        return f"Constant({self.value!r})"

    def as_sql(self, compiler, connection) -> tuple[str, tuple[Any, ...]]:
        if isinstance(self.value, int):
            return str(int(self.value)), ()
        return f"'{self.value}'", ()

    def get_group_by_cols(self):
        return []


def constants(values: Iterable[str]) -> list[Constant]:
    """`Constant`s for `status__in=`, in a fixed order: the same SQL text in every process."""
    return [Constant(value) for value in sorted(values)]


class _BytesLookup(Lookup):
    """`lhs <op> rhs` comparing bytes, as an index `varchar_pattern_ops` orders them.

    PostgreSQL's `~>=~` and `~<~` are those operators; SQLite compares text as bytes already."""

    postgresql_operator = ""
    operator = ""

    def as_sql(self, compiler, connection) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        operator = self.postgresql_operator if connection.vendor == "postgresql" else self.operator
        return f"{lhs} {operator} {rhs}", (*lhs_params, *rhs_params)


class BytesAtLeast(_BytesLookup):
    lookup_name = "bytes_gte"
    postgresql_operator = "~>=~"
    operator = ">="


class BytesBelow(_BytesLookup):
    lookup_name = "bytes_lt"
    postgresql_operator = "~<~"
    operator = "<"


def after_prefix(prefix: str) -> str | None:
    """The first text, in byte (UTF-8) order, after every text that starts with `prefix`; None if none."""
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates are not characters: the next one is U+E000
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


def starts_with(field: str, prefix: str) -> Q:
    """`field` starts with `prefix` (case as typed): a range of bytes, which an index on the field with
    `varchar_pattern_ops` serves for any value, unlike `LIKE $1` in a generic plan."""
    column = F(field)
    matches = Q(BytesAtLeast(column, prefix))
    end = after_prefix(prefix)
    return matches & Q(BytesBelow(column, end)) if end is not None else matches
