"""Reads: which actions a user may see, and the catalog built from them."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import NamedTuple

import psycopg
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.templatetags.static import static
from django.urls import get_script_prefix, reverse

from actions.compiled import compiled_rows
from actions.models import RemoteAction

SEARCH_MAX_LENGTH = 100
SEARCH_MAX_WORDS = 8


def actions_visible_to(user) -> QuerySet[RemoteAction]:
    """Enabled actions that have no groups, or a group the user belongs to. One query, no duplicates.

    The rule is the same for everyone, superusers included: curators check other groups' view with
    the admin's preview.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return RemoteAction.objects.none()
    return RemoteAction.objects.filter(visibility_rule(user.pk))


def visibility_rule(user_id) -> Q:
    """The rule, for the action in the query: enabled, with no groups or one of the user's.

    `user_id` is a number, or an expression when the rule is part of a bigger query (the send-time
    re-check reads it from the run: actions.runs.selectors). Callers check that the user is active.
    """
    action_groups = RemoteAction.groups.through.objects.filter(remoteaction_id=OuterRef("pk"))
    # The user's group ids straight from the membership table (no join through auth_group).
    user_groups = get_user_model().groups.through.objects.filter(user_id=user_id).values("group_id")
    return Q(enabled=True) & (~Exists(action_groups) | Exists(action_groups.filter(group_id__in=user_groups)))


def visible_action(user, slug: str) -> RemoteAction | None:
    """The action with this slug, with its parameters, if the user may see it; else None.

    The rule's query is compiled once per process (actions/compiled.py): the action page is on every
    run's path, GET and POST.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    found = compiled_rows(_visible_action_pk, user.pk, slug)
    if not found:
        return None
    return RemoteAction.objects.prefetch_related("parameters").filter(pk=found[0][0], enabled=True).first()


def _visible_action_pk(user_id, slug) -> QuerySet:
    return RemoteAction.objects.filter(visibility_rule(user_id), slug=slug).values_list("pk")


def search_actions(actions: QuerySet[RemoteAction], query: str) -> QuerySet[RemoteAction]:
    """Every word of the query appears in the name, the short or the long description."""
    for word in query[:SEARCH_MAX_LENGTH].split()[:SEARCH_MAX_WORDS]:
        actions = actions.filter(Q(name__icontains=word) | Q(summary__icontains=word) | Q(description__icontains=word))
    return actions


class CatalogEntry(NamedTuple):
    """An action as the catalog lists it: the few columns the page shows, not a model instance.

    The catalog lists every visible action on each view, so building 100 model instances and
    reversing 100 URLs per view was most of its cost (bench/README.md, figure 1).
    """

    pk: int
    name: str
    slug: str
    summary: str
    icon: str
    featured: bool
    display_order: int

    def get_absolute_url(self) -> str:
        return _action_url(get_script_prefix(), self.slug)

    @property
    def icon_url(self) -> str:
        return icon_url(self.icon)


@functools.lru_cache(maxsize=4096)
def _action_url(script_prefix: str, slug: str) -> str:
    """RemoteAction.get_absolute_url, remembered per script prefix (reverse() reads the same one)."""
    return reverse("action_detail", kwargs={"slug": slug})


@functools.lru_cache(maxsize=64)
def icon_url(icon: str) -> str:
    """The icon's static URL; the storage, and so the hashed name, is fixed for the process."""
    return static(f"icons/{icon}.svg")


CATALOG_COLUMNS = (
    "pk",
    "name",
    "slug",
    "summary",
    "icon",
    "featured",
    "display_order",
    "category_id",
    "category__name",
)


@dataclass
class CatalogSection:
    title: str
    key: str
    actions: list[CatalogEntry] = field(default_factory=list)


def catalog_sections(user, query: str = "") -> list[CatalogSection]:
    """The catalog page: featured actions first, then one section per category, then the rest.

    An action appears once: a featured action is listed under "Featured", not again in its category.
    """
    return catalog_sections_from_rows(catalog_rows(user, query))


def catalog_rows(user, query: str = "") -> list[tuple]:
    """The visible actions as the catalog shows them, one tuple of CATALOG_COLUMNS each: one query."""
    query = query.strip()
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return []
    if query:
        return list(_catalog_rows(user, query))
    # The catalog as most views ask for it: its SQL compiled once per process, prepared once per connection.
    sql, params, user_slot = _catalog_sql(connection.alias)
    params = [*params[:user_slot], user.pk, *params[user_slot + 1 :]]
    with _catalog_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def catalog_sections_from_rows(rows: list[tuple]) -> list[CatalogSection]:
    featured = CatalogSection("Featured", "featured")
    by_category: dict[int, CatalogSection] = {}
    other = CatalogSection("Other actions", "other")
    for pk, name, slug, summary, icon, is_featured, display_order, category_id, category_name in rows:
        entry = CatalogEntry(pk, name, slug, summary, icon, bool(is_featured), display_order)
        if is_featured:
            featured.actions.append(entry)
        elif category_id is None:
            other.actions.append(entry)
        else:
            by_category.setdefault(
                category_id, CatalogSection(category_name, f"category-{category_id}")
            ).actions.append(entry)
    featured.actions.sort(key=lambda a: (a.display_order, a.name.lower(), a.pk))
    return [s for s in (featured, *by_category.values(), other) if s.actions]


def _catalog_rows(user, query: str = "") -> QuerySet:
    return (
        search_actions(actions_visible_to(user), query)
        .order_by("category__display_order", "category__name", "category_id", "display_order", "name", "pk")
        .values_list(*CATALOG_COLUMNS)
    )


_USER_PLACEHOLDER = -2_147_483_647  # no user has this id: it marks the user's place among the parameters


@functools.cache
def _catalog_sql(alias: str) -> tuple[str, tuple, int]:
    """The SQL the ORM writes for `_catalog_rows(user)`, with where the user's id goes among its parameters.

    Building and compiling this query (Exists, OuterRef, ordering across a join) costs the ORM about
    1 ms per view, more than PostgreSQL takes to run it (bench/README.md, figure 1). The rule stays
    written once, in actions_visible_to(); only its compiled form is kept.
    """
    placeholder = SimpleNamespace(pk=_USER_PLACEHOLDER, is_authenticated=True, is_active=True)
    sql, params = _catalog_rows(placeholder).query.sql_with_params()
    if list(params).count(_USER_PLACEHOLDER) != 1:
        raise RuntimeError("the catalog query must take the user's id exactly once")
    return sql, tuple(params), list(params).index(_USER_PLACEHOLDER)


def _catalog_cursor():
    """A cursor for the catalog's query: Django's own, or on PostgreSQL with the portal's pool, one
    that binds parameters on the server and prepares the query.

    PostgreSQL then parses and plans it once per pooled connection instead of on every view: that
    was half of its cost (bench/README.md, figure 1). Django's cursors bind on the client, which
    cannot prepare. The cursor is still wrapped by Django: logged, counted and error-mapped as usual.
    Only with the pool, whose connections go straight to PostgreSQL: a transaction-mode pooler in
    between (DATABASE_POOL_MAX_SIZE=0 and PgBouncer) may not keep prepared statements.
    """
    if connection.vendor != "postgresql" or not connection.settings_dict["OPTIONS"].get("pool"):
        return connection.cursor()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(_PreparedCursor(connection.connection))


class _PreparedCursor(psycopg.Cursor):
    def execute(self, query, params=None, **kwargs):
        return super().execute(query, params, prepare=True, **kwargs)
