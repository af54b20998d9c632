"""Reads: which actions a user may see, and the catalog built from them."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber
from django.templatetags.static import static
from django.urls import get_script_prefix, reverse
from django.utils.translation import gettext

from actions.catalog import search
from actions.compiled import compiled_rows
from actions.models import CatalogVersion, Device, RemoteAction
from actions.platforms import MACOS, UNKNOWN, WINDOWS, offered


def actions_visible_to(user, platforms: frozenset[str] | None = None) -> QuerySet[RemoteAction]:
    """Enabled actions that have no groups, or a group the user belongs to. One query, no duplicates.

    The rule is the same for everyone, superusers included: curators check other groups' view with
    the admin's preview. `platforms`: only the actions that run on one of these systems (None: all).
    """
    if not _active(user):
        return RemoteAction.objects.none()
    return RemoteAction.objects.filter(visibility_rule(user.pk) & platform_rule(platforms))


def platform_rule(platforms: frozenset[str] | None) -> Q:
    """The action runs on one of these systems (actions/platforms.py); None: no rule."""
    rule = Q()
    if platforms is None:
        return rule
    if WINDOWS in platforms:
        rule |= Q(runs_on_windows=True)
    if MACOS in platforms:
        rule |= Q(runs_on_macos=True)
    return rule


def catalog_platforms(user, learn_devices: LearnDevices | None = None) -> frozenset[str] | None:
    """The systems the catalog offers actions for: those of the devices the portal knows as the user's.

    None (every action): no device known, or one whose system is not known. When it knows none,
    `learn_devices(user)` may find them (True: found some; actions/devices/resolution.learn_devices).
    """
    systems = _device_systems(user)
    if not systems and learn_devices is not None and learn_devices(user):
        systems = _device_systems(user)
    return offered(systems)


# Finds the user's devices when the portal knows none: True when it found some.
LearnDevices = Callable[[Any], bool]


def _device_systems(user) -> list[str]:
    return list(Device.objects.filter(owner_id=user.pk).order_by().values_list("platform", flat=True).distinct())


@functools.cache
def with_platforms(build, platforms: frozenset[str] | None):
    """`build`, filtered to the actions that run on `platforms`: one function (so one compiled query,
    actions/compiled.py) per builder and set of systems. `build` takes `platforms` as a keyword."""

    def built(*values):
        return build(*values, platforms=platforms)

    built.__name__ = build.__name__
    built.__qualname__ = f"{build.__qualname__}[{','.join(sorted(platforms)) if platforms else 'all'}]"
    return built


def visibility_rule(user_id) -> Q:
    """The rule, for the action in the query: enabled, with no groups or one of the user's.

    `user_id` is a number, or an expression when the rule is part of a bigger query (the send-time
    re-check reads it from the run: actions.runs.selectors). Callers check that the user is active.
    """
    action_groups = RemoteAction.groups.through.objects.filter(remoteaction_id=OuterRef("pk"))
    # The user's group ids straight from the membership table (no join through auth_group).
    user_groups = get_user_model().groups.through.objects.filter(user_id=user_id).values("group_id")
    rule = Q(enabled=True) & (~Exists(action_groups) | Exists(action_groups.filter(group_id__in=user_groups)))
    if settings.NEXTHINK_PLATFORM != "infinity":
        rule &= ~Q(kind=RemoteAction.Kind.WORKFLOW)  # classic cannot run a workflow
    return rule


def visible_action(user, slug: str) -> RemoteAction | None:
    """The action with this slug, with its parameters and Engines, if the user may see it; else None.

    The rule is checked on every call, in one query compiled once per process (actions/compiled.py)
    that also reads the catalog's version; the action itself comes from the cache under that version.
    The action page is on every run's path, GET and POST.
    """
    if not _active(user):
        return None
    found = compiled_rows(_visible_action_pk, user.pk, slug)
    if not found:
        return None
    [(pk, version)] = found
    # The action with what its form and submit read (parameters, Engines), cached under the
    # catalog's version like the first page: any change to them is a new version, so a new key.
    key = f"catalog-action:{pk}:{version}"
    action = cache.get(key)
    if action is None:
        action = RemoteAction.objects.prefetch_related("parameters", "engines").filter(pk=pk, enabled=True).first()
        if action is not None:
            cache.set(key, action, CATALOG_CACHE_SECONDS)
    return action


def _visible_action_pk(user_id, slug) -> QuerySet:
    """The visible action's id and the catalog's version (None before the first change)."""
    version = CatalogVersion.objects.filter(pk=1).values("number")[:1]
    return (
        RemoteAction.objects.filter(visibility_rule(user_id), slug=slug)
        .annotate(version=Subquery(version))
        .values_list("pk", "version")
    )


class CatalogEntry(NamedTuple):
    """An action as the catalog lists it: the few columns the page shows, not a model instance.

    Building a model instance and reversing a URL per card was most of the catalog's cost when it
    listed every visible action (bench/README.md, figure 1).
    """

    pk: int
    name: str
    slug: str
    summary: str
    icon: str
    featured: bool
    display_order: int
    # Why the employee cannot run it now, and from when (runs/outlook.py: catalog_outlook); empty: they can.
    not_now: tuple[str, ...] = ()

    def get_absolute_url(self) -> str:
        return _action_url(get_script_prefix(), self.slug)

    @property
    def icon_url(self) -> str:
        return icon_url(self.icon)


def limited_actions(rows: list[tuple]) -> list[RemoteAction]:
    """The actions of these catalog rows that have a cooldown or a daily limit, as unsaved instances
    holding what the limits read (name, limits, systems): no query."""
    c = {name: i for i, name in enumerate(CATALOG_COLUMNS)}
    return [
        RemoteAction(
            pk=row[c["pk"]],
            name=row[c["name"]],
            cooldown_minutes=row[c["cooldown_minutes"]],
            daily_limit_per_user=row[c["daily_limit_per_user"]],
            runs_on_windows=row[c["runs_on_windows"]],
            runs_on_macos=row[c["runs_on_macos"]],
        )
        for row in rows
        if row[c["cooldown_minutes"]] or row[c["daily_limit_per_user"]]
    ]


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
    # Whether the employee may run it now (runs/outlook.py: catalog_outlook, limited_actions): its
    # limits, and the systems it runs on (a cooldown on a device it cannot run on does not count).
    "cooldown_minutes",
    "daily_limit_per_user",
    "runs_on_windows",
    "runs_on_macos",
)

# Up to this many visible actions, the catalog's first page shows every one of them. With more, it
# shows the featured actions and the first few of each category, each with a link to all of them.
SMALL_CATALOG = 100
FEATURED_SHOWN = 12  # featured actions on the first page; more: "See all N featured actions"
PREVIEW_SHOWN = 6  # actions of each category on the first page
PREVIEW_SECTIONS = 12  # categories with a preview; the others are links under "More categories"
PAGE_SIZE = 48  # a category's page, a page of search results
CATALOG_CACHE_SECONDS = 600  # what is cached under the catalog version; only memory: a new version is a new key
FEATURED, OTHER = "featured", "other"  # the ?category= values that are not a category's id
_ID_MAX = 2_147_483_647  # PositiveIntegerField's largest value: a larger id names nothing

# The overview's rows: CATALOG_COLUMNS, its category's order, then its place in its section (1, 2, ...;
# featured actions form one section), how many actions that section holds, how many its category holds
# (featured ones included), and how many actions the user sees in all.
OVERVIEW_COLUMNS = (
    *CATALOG_COLUMNS,
    "category__display_order",
    "position",
    "section_total",
    "category_total",
    "total",
)
# A listing's rows (a category's page, a page of results): CATALOG_COLUMNS and how many there are in all.
LISTING_COLUMNS = (*CATALOG_COLUMNS, "total")


@dataclass
class CatalogSection:
    title: str
    key: str
    actions: list[CatalogEntry] = field(default_factory=list)
    total: int = 0  # the section's actions in all, shown or not
    url: str = ""  # the page with all of them, when the section shows only some

    @property
    def more(self) -> int:
        """How many of its actions the section does not show (its link shows them all)."""
        return self.total - len(self.actions) if self.url else 0


@dataclass
class Overview:
    """The catalog's first page: its sections, and the categories listed only by name."""

    total: int
    sections: list[CatalogSection]
    more_categories: list[CatalogSection] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.total <= SMALL_CATALOG


@dataclass
class Listing:
    """One page of a category's actions or of search results: the rows shown and how many in all."""

    title: str
    rows: list[tuple]
    total: int
    page: int


def catalog_sections(user, query: str = "") -> list[CatalogSection]:
    """The sections of the catalog's first page, or of the first page of results for `query`."""
    if query.strip():
        return catalog_sections_from_rows(catalog_search(user, query).rows)
    return catalog_overview_from_rows(catalog_overview_rows(user)).sections


def catalog_overview_rows(user, learn_devices: LearnDevices | None = None) -> list[tuple]:
    """The rows the first page shows, one tuple of OVERVIEW_COLUMNS each: one query, compiled once.

    Every visible action when there are at most SMALL_CATALOG of them; otherwise the first
    FEATURED_SHOWN featured actions, the first PREVIEW_SHOWN of each of the first PREVIEW_SECTIONS
    categories and the first of each other category (for its name and count).
    """
    if not _active(user):
        return []
    # What the first page shows depends only on the catalog and the user's groups: cached under both
    # (the catalog's version changes with every change to it: actions/catalog/version.py). Ranking and
    # counting every visible action was most of a view's cost at 1,000 actions (bench/README.md, figure 1).
    # It also depends on the systems of the user's devices (actions/platforms.py): read in the same query,
    # and again if `learn_devices` found devices the portal did not know (see catalog_platforms).
    version, groups, systems = _version_groups_and_systems_of(user)
    if not systems and learn_devices is not None and learn_devices(user):
        version, groups, systems = _version_groups_and_systems_of(user)
    platforms = offered(systems)
    shown = repr((sorted(groups), sorted(platforms) if platforms is not None else None))
    key = f"catalog-overview:{settings.NEXTHINK_PLATFORM}:{version}:{hashlib.blake2b(shown.encode(), digest_size=16).hexdigest()}"
    rows = cache.get(key)
    if rows is None:
        rows = compiled_rows(with_platforms(_overview_of, platforms), user.pk)
        cache.set(key, rows, CATALOG_CACHE_SECONDS)
    return rows


def _version_groups_and_systems_of(user) -> tuple[int | None, list[int], set[str]]:
    version, groups, systems = None, [], set()
    for kind, number in compiled_rows(_version_groups_and_systems, user.pk, user.pk):  # one query, compiled once
        if kind == "v":
            version = number
        elif kind == "g":
            groups.append(number)
        else:
            systems.add(_SYSTEM_NAMES.get(number, UNKNOWN))
    return version, groups, systems


_SYSTEM_NUMBERS = {WINDOWS: 1, MACOS: 2}  # a device's system as a number, to share the union's column
_SYSTEM_NAMES = {number: name for name, number in _SYSTEM_NUMBERS.items()}


def _version_groups_and_systems(user_id, device_owner_id) -> QuerySet:
    """("v", the catalog's version), ("g", group id) for each of the user's groups, and ("s", system)
    for each of the user's devices (_SYSTEM_NUMBERS; 0: not known)."""
    version = CatalogVersion.objects.filter(pk=1).values_list(Value("v"), "number")
    groups = get_user_model().groups.through.objects.filter(user_id=user_id).values_list(Value("g"), "group_id")
    system = Case(
        *(When(platform=name, then=Value(number)) for name, number in _SYSTEM_NUMBERS.items()),
        default=Value(0),
        output_field=IntegerField(),
    )
    systems = Device.objects.filter(owner_id=device_owner_id).order_by().values_list(Value("s"), system)
    return version.union(groups, systems, all=True)


def catalog_category(user, category: str, page: int = 1, learn_devices: LearnDevices | None = None) -> Listing | None:
    """A page of PAGE_SIZE actions of one category, all featured actions or all uncategorized ones
    (`category`: a category's id, FEATURED or OTHER), featured ones included, in the category's order.
    None when the user sees no action there or no such page: one query, compiled once.
    """
    if not _active(user) or page < 1:
        return None
    if category in (FEATURED, OTHER):
        kind, category_id = category, None
    elif category.isascii() and category.isdigit() and int(category) <= _ID_MAX:
        kind, category_id = "category", int(category)
    else:
        return None
    rows = _page_rows(kind, user.pk, category_id, page, catalog_platforms(user, learn_devices))
    if not rows:
        return None
    if kind == FEATURED:
        title = gettext("Featured actions")
    elif kind == OTHER:
        title = gettext("Other actions")
    else:
        title = rows[0][CATALOG_COLUMNS.index("category__name")]
    return Listing(title, rows, rows[0][-1], page)


def catalog_search(user, query: str, page: int = 1, learn_devices: LearnDevices | None = None) -> Listing:
    """A page of PAGE_SIZE actions matching `query`, in the first page's order (featured first, then
    by category). Its rows are empty past the last page: one query."""
    query = query.strip()
    if not _active(user) or not query or page < 1:
        return Listing("", [], 0, page)
    offset = (page - 1) * PAGE_SIZE
    visible = actions_visible_to(user, catalog_platforms(user, learn_devices))
    words = search.query_words(query)
    if search.in_database():
        rows = list(_listing(visible.filter(search.database_rule(words)), SEARCH_ORDER)[offset : offset + PAGE_SIZE])
        return Listing("", rows, rows[0][-1] if rows else 0, page)
    # Elsewhere (SQLite), still one query: every visible action with its texts, matched in Python.
    n = len(CATALOG_COLUMNS)
    every = visible.order_by(*SEARCH_ORDER).values_list(*CATALOG_COLUMNS, *search.SEARCHED_FIELDS)
    found = [row[:n] for row in every if search.matches(words, row[n:])]
    rows = [(*row, len(found)) for row in found[offset : offset + PAGE_SIZE]]
    return Listing("", rows, len(found), page)


def catalog_sections_from_rows(rows: list[tuple]) -> list[CatalogSection]:
    """Every row as a card: featured actions first, one section per category, then the rest.

    An action appears once: a featured action is listed under "Featured", not again in its category.
    """
    featured = CatalogSection(gettext("Featured"), "featured")
    by_category: dict[int, CatalogSection] = {}
    other = CatalogSection(gettext("Other actions"), "other")
    for row in rows:
        pk, name, slug, summary, icon, is_featured, display_order, category_id, category_name = row[:9]
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
    sections = [s for s in (featured, *by_category.values(), other) if s.actions]
    for section in sections:
        section.total = len(section.actions)
    return sections


def catalog_overview_from_rows(rows: list[tuple]) -> Overview:
    """The first page from catalog_overview_rows(): every action in its section when the catalog is
    small; otherwise each section's first actions, its count and a link to all of them."""
    c = {name: i for i, name in enumerate(OVERVIEW_COLUMNS)}
    total = rows[0][c["total"]] if rows else 0
    # The query leaves the order to Python (sorting its few rows here is cheaper than in PostgreSQL):
    # categories in their order, uncategorized last; in each section, the place the query gave it.
    rows = sorted(
        rows,
        key=lambda r: (
            r[c["category_id"]] is None,
            r[c["category__display_order"]] or 0,
            r[c["category__name"]] or "",
            r[c["category_id"]] or 0,
            r[c["position"]],
        ),
    )
    if total <= SMALL_CATALOG:
        return Overview(total, catalog_sections_from_rows(rows))
    featured = CatalogSection(gettext("Featured"), "featured", url=category_url(FEATURED))
    for row in sorted((r for r in rows if r[c["featured"]]), key=lambda r: r[c["position"]]):
        featured.actions.append(CatalogEntry(*row[:7]))
        featured.total = row[c["section_total"]]
    by_category: dict[int | None, CatalogSection] = {}
    sections: list[CatalogSection] = [featured]
    more: list[CatalogSection] = []
    for row in rows:
        if row[c["featured"]]:
            continue
        category_id = row[c["category_id"]]
        section = by_category.get(category_id)
        if section is None:
            key = OTHER if category_id is None else str(category_id)
            title = gettext("Other actions") if category_id is None else row[c["category__name"]]
            section = by_category[category_id] = CatalogSection(
                title, f"category-{key}", total=row[c["category_total"]], url=category_url(key)
            )
            # The first PREVIEW_SECTIONS sections show their first actions; the others only a link.
            (sections if len(sections) <= PREVIEW_SECTIONS else more).append(section)
        if section not in more:
            section.actions.append(CatalogEntry(*row[:7]))
    for section in sections:
        if section.total <= len(section.actions):
            section.url = ""
    return Overview(total, [s for s in sections if s.actions], more)


def category_url(key: str) -> str:
    return f"{_catalog_url(get_script_prefix())}?category={key}"


@functools.lru_cache(maxsize=64)
def _catalog_url(script_prefix: str) -> str:
    return reverse("catalog")


def _active(user) -> bool:
    return getattr(user, "is_authenticated", False) and user.is_active


# The first page's order, and that of search results: featured actions first (by their own order),
# then by category (uncategorized last), then the action's order. A total order, for paging.
SEARCH_ORDER = (
    F("featured").desc(),
    Case(When(featured=True, then=Value(0)), default=F("category__display_order"), output_field=IntegerField()).asc(
        nulls_last=True
    ),
    Case(When(featured=True, then=Value("")), default=F("category__name"), output_field=CharField()).asc(
        nulls_last=True
    ),
    F("display_order").asc(),
    F("name").asc(),
    F("pk").asc(),
)
IN_CATEGORY_ORDER = (F("display_order").asc(), F("name").asc(), F("pk").asc())


def _listing(actions: QuerySet[RemoteAction], order) -> QuerySet:
    return actions.annotate(total=Window(Count("pk"))).order_by(*order).values_list(*LISTING_COLUMNS)


def _overview(user, platforms: frozenset[str] | None = None) -> QuerySet:
    """The actions the first page shows (OVERVIEW_COLUMNS), with their place and counts.

    The windows rank and count rows that carry the display columns too: joining those columns to the
    few rows kept after ranking needs a subquery in FROM, which the ORM does not write. That costs
    PostgreSQL a little more on a cache miss only (the rows are cached per catalog version and groups).
    """
    # A featured action's section is "Featured", whatever its category.
    section = (F("featured"), Case(When(featured=True, then=Value(None)), default=F("category_id")))
    return (
        actions_visible_to(user, platforms)
        .annotate(
            position=Window(RowNumber(), partition_by=section, order_by=IN_CATEGORY_ORDER),
            section_total=Window(Count("pk"), partition_by=section),
            category_total=Window(Count("pk"), partition_by=[F("category_id")]),
            total=Window(Count("pk")),
        )
        .filter(
            Q(total__lte=SMALL_CATALOG)
            | Q(featured=True, position__lte=FEATURED_SHOWN)
            | Q(featured=False, position__lte=PREVIEW_SHOWN)
        )
        .order_by()
        .values_list(*OVERVIEW_COLUMNS)
    )


def _as_user(user_id) -> SimpleNamespace:
    """The rules take a user; compiled once, they are given its id (actions/compiled.py)."""
    return SimpleNamespace(pk=user_id, is_authenticated=True, is_active=True)


def _overview_of(user_id, platforms=None) -> QuerySet:
    return _overview(_as_user(user_id), platforms)


def _page(actions: QuerySet[RemoteAction], first: int, last: int) -> QuerySet:
    """Rows `first` to `last` (numbered from 1) of a listing in the category's order, and how many in
    all. The bounds are a filter on the rows' number, not a slice: so they stay parameters, bound at
    each call, and the query is compiled once for every page (actions/compiled.py)."""
    return (
        actions.annotate(total=Window(Count("pk")), row=Window(RowNumber(), order_by=IN_CATEGORY_ORDER))
        .filter(row__range=(first, last))
        .order_by(*IN_CATEGORY_ORDER)
        .values_list(*LISTING_COLUMNS)
    )


def _category_page_of(user_id, category_id, first, last, platforms=None) -> QuerySet:
    return _page(actions_visible_to(_as_user(user_id), platforms).filter(category_id=category_id), first, last)


def _featured_page_of(user_id, first, last, platforms=None) -> QuerySet:
    return _page(actions_visible_to(_as_user(user_id), platforms).filter(featured=True), first, last)


def _other_page_of(user_id, first, last, platforms=None) -> QuerySet:
    return _page(actions_visible_to(_as_user(user_id), platforms).filter(category__isnull=True), first, last)


def _page_rows(
    kind: str, user_id: int, category_id: int | None, page: int, platforms: frozenset[str] | None = None
) -> list[tuple]:
    """A page of a category, of the featured actions or of the uncategorized ones: compiled once each.

    Building and compiling these queries (Exists, OuterRef, windows, ordering across a join) costs the
    ORM about 1 ms per view, more than PostgreSQL takes to run them (bench/README.md, figure 1).
    """
    first, last = (page - 1) * PAGE_SIZE + 1, page * PAGE_SIZE
    if kind == FEATURED:
        return compiled_rows(with_platforms(_featured_page_of, platforms), user_id, first, last)
    if kind == OTHER:
        return compiled_rows(with_platforms(_other_page_of, platforms), user_id, first, last)
    return compiled_rows(with_platforms(_category_page_of, platforms), user_id, category_id, first, last)
