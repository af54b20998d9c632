"""Reads: which actions a user may see, and the catalog built from them."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Q, QuerySet

from actions.models import RemoteAction, Run

SEARCH_MAX_LENGTH = 100
SEARCH_MAX_WORDS = 8


def actions_visible_to(user) -> QuerySet[RemoteAction]:
    """Enabled actions that have no groups, or a group the user belongs to. One query, no duplicates.

    The rule is the same for everyone, superusers included: curators check other groups' view with
    the admin's preview.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return RemoteAction.objects.none()
    action_groups = RemoteAction.groups.through.objects.filter(remoteaction_id=OuterRef("pk"))
    return RemoteAction.objects.filter(enabled=True).filter(
        ~Exists(action_groups) | Exists(action_groups.filter(group__user=user))
    )


def search_actions(actions: QuerySet[RemoteAction], query: str) -> QuerySet[RemoteAction]:
    """Every word of the query appears in the name, the short or the long description."""
    for word in query[:SEARCH_MAX_LENGTH].split()[:SEARCH_MAX_WORDS]:
        actions = actions.filter(Q(name__icontains=word) | Q(summary__icontains=word) | Q(description__icontains=word))
    return actions


@dataclass
class CatalogSection:
    title: str
    key: str
    actions: list[RemoteAction] = field(default_factory=list)


def catalog_sections(user, query: str = "") -> list[CatalogSection]:
    """The catalog page: featured actions first, then one section per category, then the rest.

    An action appears once: a featured action is listed under "Featured", not again in its category.
    """
    actions = search_actions(actions_visible_to(user), query.strip()).select_related("category")
    featured = CatalogSection("Featured", "featured")
    by_category: dict[int, CatalogSection] = {}
    other = CatalogSection("Other actions", "other")
    for action in actions.order_by(
        "category__display_order", "category__name", "category_id", "display_order", "name", "pk"
    ):
        if action.featured:
            featured.actions.append(action)
        elif action.category is None:
            other.actions.append(action)
        else:
            by_category.setdefault(
                action.category_id, CatalogSection(action.category.name, f"category-{action.category_id}")
            ).actions.append(action)
    featured.actions.sort(key=lambda a: (a.display_order, a.name.lower(), a.pk))
    return [s for s in (featured, *by_category.values(), other) if s.actions]


def runs_of(user) -> QuerySet[Run]:
    """The runs made for this user, newest first: the only runs an employee may ever see."""
    return Run.objects.filter(user=user).order_by("-created_at")
