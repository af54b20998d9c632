"""The catalog's version: a number that changes, in the same transaction, with every change to what
the catalog shows. The first page is cached under it (actions/catalog/selectors.py), so a curator's
change shows on the next view, in every process, with nothing to invalidate.

Every way the portal changes actions goes through a model's save or delete, or the groups' and
Engines' m2m_changed, which these receivers hear; code that changes them with QuerySet.update() or
bulk_create() (no signals) calls bump().
Deleting a group removes its links to actions without m2m_changed: its post_delete bumps too.
"""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db.models import F
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver

from actions.models import ActionParameter, CatalogVersion, Category, Engine, RemoteAction


def bump() -> None:
    if not CatalogVersion.objects.filter(pk=1).update(number=F("number") + 1):
        CatalogVersion.objects.get_or_create(pk=1, defaults={"number": 1})


@receiver([post_save, post_delete], sender=RemoteAction, dispatch_uid="catalog-version-action")
@receiver([post_save, post_delete], sender=Category, dispatch_uid="catalog-version-category")
@receiver(post_delete, sender=Group, dispatch_uid="catalog-version-group")
@receiver(m2m_changed, sender=RemoteAction.groups.through, dispatch_uid="catalog-version-groups")
# The action page's cached action (selectors.visible_action) holds its parameters and Engines.
@receiver([post_save, post_delete], sender=ActionParameter, dispatch_uid="catalog-version-parameter")
@receiver(m2m_changed, sender=RemoteAction.engines.through, dispatch_uid="catalog-version-engines")
@receiver(post_delete, sender=Engine, dispatch_uid="catalog-version-engine")
def _changed(**kwargs) -> None:
    if kwargs.get("action", "post_").startswith("post_"):  # m2m_changed: after the change, not before
        bump()


# An Engine counts for the cached action only by its database UID; the hourly sync saves every
# Engine (its status, when it was synced), which must not empty every process's catalog caches.
@receiver(pre_save, sender=Engine, dispatch_uid="catalog-version-engine-uid-read")
def _engine_uid_before(instance: Engine, **kwargs) -> None:
    instance._catalog_uid_changed = (
        instance.pk is not None
        and not Engine.objects.filter(pk=instance.pk, database_uid=instance.database_uid).exists()
    )


@receiver(post_save, sender=Engine, dispatch_uid="catalog-version-engine-uid")
def _engine_uid_changed(instance: Engine, **kwargs) -> None:
    if getattr(instance, "_catalog_uid_changed", False):
        bump()
