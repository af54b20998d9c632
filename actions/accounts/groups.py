"""The directory's groups become Django groups at each sign-in.

"Managed" groups are exactly the ones the settings name: the targets of OIDC_GROUP_MAP, the
"Portal curators" group when OIDC_CURATOR_GROUP is set, and ANY_DEVICE_GROUP_NAME when
OIDC_ANY_DEVICE_GROUP is set. A managed group follows the claim (added and removed); every other
group of the user (given by hand in the admin) is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db import transaction

CURATORS_GROUP_NAME = "Portal curators"  # created by migration 0002_portal_curators_group
ANY_DEVICE_GROUP_NAME = "Run on any device (directory)"


def claim_values(raw) -> set[str]:
    """The groups claim as a set of strings: a list, or one string (some providers send one group so)."""
    if raw is None:
        return set()
    if isinstance(raw, str):
        return {raw}
    if isinstance(raw, list | tuple):
        return {str(item) for item in raw if isinstance(item, str | int)}
    return set()


def _any_device_group() -> Group:
    group, created = Group.objects.get_or_create(name=ANY_DEVICE_GROUP_NAME)
    if created:
        group.permissions.add(
            Permission.objects.get(codename="run_action_on_any_device", content_type__app_label="actions")
        )
    return group


def desired_groups(values: Iterable[str]) -> tuple[set[str], set[str]]:
    """(managed group names, of which the ones the user belongs in) for these claim values."""
    values = set(values)
    group_map: dict[str, str] = settings.OIDC_GROUP_MAP
    managed = set(group_map.values())
    wanted = {group_map[value] for value in values if value in group_map}
    if settings.OIDC_CURATOR_GROUP:
        managed.add(CURATORS_GROUP_NAME)
        if settings.OIDC_CURATOR_GROUP in values:
            wanted.add(CURATORS_GROUP_NAME)
    if settings.OIDC_ANY_DEVICE_GROUP:
        managed.add(ANY_DEVICE_GROUP_NAME)
        if settings.OIDC_ANY_DEVICE_GROUP in values:
            wanted.add(ANY_DEVICE_GROUP_NAME)
    return managed, wanted


@transaction.atomic
def directory_groups_sync(*, user, values: Iterable[str]) -> None:
    """Make the user's managed groups (and curator staff flag) match the directory's claim."""
    managed, wanted = desired_groups(values)
    if ANY_DEVICE_GROUP_NAME in wanted:
        _any_device_group()
    for name in wanted:
        Group.objects.get_or_create(name=name)
    current = set(user.groups.filter(name__in=managed).values_list("name", flat=True))
    user.groups.remove(*Group.objects.filter(name__in=current - wanted))
    user.groups.add(*Group.objects.filter(name__in=wanted - current))
    # Superusers are the local break-glass accounts: the directory never takes the admin from them.
    if settings.OIDC_CURATOR_GROUP and not user.is_superuser:
        is_curator = CURATORS_GROUP_NAME in wanted
        if user.is_staff != is_curator:
            user.is_staff = is_curator
            user.save(update_fields=["is_staff"])
