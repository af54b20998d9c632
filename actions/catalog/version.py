"""The catalog's version: a number that changes, in the same transaction, with every change to what
the catalog shows. The first page and the action page's action are cached under it
(actions/catalog/selectors.py), so a curator's change shows on the next view, in every process,
with nothing to invalidate.

Bulk writes (QuerySet.update(), bulk_create(), bulk_update(), delete()) of actions, parameters,
categories and Engines move it themselves (actions.models.CatalogQuerySet); saves and deletes of
single objects, and the groups' and Engines' m2m_changed, are heard here. Deleting a group removes
its links to actions without m2m_changed: its post_delete moves it too.
"""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from actions.models import ActionParameter, CatalogVersion, Category, Engine, RemoteAction


@receiver([post_save, post_delete], sender=RemoteAction, dispatch_uid="catalog-version-action")
@receiver([post_save, post_delete], sender=Category, dispatch_uid="catalog-version-category")
@receiver(post_delete, sender=Group, dispatch_uid="catalog-version-group")
@receiver(m2m_changed, sender=RemoteAction.groups.through, dispatch_uid="catalog-version-groups")
# The action page's cached action (selectors.visible_action) holds its parameters and Engines.
@receiver([post_save, post_delete], sender=ActionParameter, dispatch_uid="catalog-version-parameter")
@receiver(m2m_changed, sender=RemoteAction.engines.through, dispatch_uid="catalog-version-engines")
@receiver(post_delete, sender=Engine, dispatch_uid="catalog-version-engine")
def _changed(using=None, **kwargs) -> None:
    if kwargs.get("action", "post_").startswith("post_"):  # m2m_changed: after the change, not before
        CatalogVersion.bump(using)


@receiver(post_save, sender=Engine, dispatch_uid="catalog-version-engine-saved")
def _engine_saved(update_fields=None, using=None, **kwargs) -> None:
    # An Engine counts for the cached action only by its database UID: the hourly sync, which saves
    # every Engine's status and sync time by name, must not empty every process's catalog caches.
    if update_fields is None or "database_uid" in update_fields:
        CatalogVersion.bump(using)
