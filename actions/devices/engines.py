"""Engines: kept in step with the List Engines API; the ones NXQL asks."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from actions.models import Engine
from actions.nexthink.classic.client import ActClient, client_from_settings
from actions.uids import ENGINE_UID_RE

log = logging.getLogger(__name__)

ENGINE_NOT_LISTED = "NOT_LISTED"  # status of an Engine the List Engines API no longer reports


def connected_engines() -> QuerySet[Engine]:
    """Engines NXQL asks: connected as List Engines says, or added by hand (no status yet)."""
    return Engine.objects.filter(Q(status__iexact="connected") | Q(status=""))


@dataclass
class EngineSyncResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    not_listed: list[str] = field(default_factory=list)
    skipped: int = 0
    empty_answer: bool = False  # Nexthink listed no Engine at all: nothing was changed

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "not_listed": self.not_listed,
            "skipped": self.skipped,
            "empty_answer": self.empty_answer,
        }


def engines_sync(*, client: ActClient | None = None) -> EngineSyncResult:
    """Make the Engine rows match the List Engines API. Raises ActApiError when Nexthink cannot be asked.

    An Engine no longer listed is kept (actions may target it) with status NOT_LISTED, so that NXQL
    stops asking it. An empty list is taken as Nexthink saying nothing (a portal has at least one
    Engine; an empty answer is far likelier a permissions or proxy problem than every Engine gone),
    so the Engines are kept as they are and the result says so.
    """
    infos = (client or client_from_settings()).list_engines()
    now = timezone.now()
    result = EngineSyncResult()
    if not infos:
        log.warning("List Engines answered an empty list; the Engines are kept as they are")
        result.empty_answer = True
        return result
    listed: set[str] = set()
    with transaction.atomic():
        for info in infos:
            uid = info.database_uid.strip().lower()
            if not ENGINE_UID_RE.fullmatch(uid) or uid in listed:
                log.warning("List Engines: skipping an Engine with a bad or repeated databaseUID %r", uid[:64])
                result.skipped += 1
                continue
            listed.add(uid)
            name = (info.name.strip() or uid)[:200]
            values = {
                "name": name,
                "address": info.address.strip()[:255],
                "port": info.port if info.port is not None and 0 < info.port < 65536 else None,
                "status": info.status.strip()[:40],
            }
            engine = Engine.objects.filter(database_uid=uid).first()
            if engine is None:
                Engine.objects.create(database_uid=uid, last_synced_at=now, **values)
                result.created.append(name)
                continue
            changed = any(getattr(engine, key) != value for key, value in values.items())
            for key, value in values.items():
                setattr(engine, key, value)
            engine.last_synced_at = now
            engine.save(update_fields=[*values, "last_synced_at"])  # found by its UID: never changes it
            (result.updated if changed else result.unchanged).append(engine.name)
        gone = Engine.objects.exclude(database_uid__in=listed).exclude(status=ENGINE_NOT_LISTED)
        for engine in gone:  # one by one: the audit trail records each (update() sends no signal)
            engine.status = ENGINE_NOT_LISTED
            engine.save(update_fields=["status"])
            result.not_listed.append(engine.name)
    log.info("Engines synced: %s", result.as_dict())
    return result


# --- Engine names, the label stored beside each Engine's answer ----------------------------------------
ENGINE_NAMES_SECONDS = 300
ENGINE_NAMES_KEY = "engine-names"


def engine_names(uids: set[str]) -> dict[str, str]:
    """Engine names by database UID, read once per ENGINE_NAMES_SECONDS per process (and for a UID not
    seen yet): a name is only a label stored beside each answer, and Engines are seldom renamed.
    A change saved in this process is seen at once (forget_engine_names, on Engine's signals)."""
    names = cache.get(ENGINE_NAMES_KEY)
    if names is None or not uids <= names.keys():
        names = dict(Engine.objects.values_list("database_uid", "name"))
        cache.set(ENGINE_NAMES_KEY, names, ENGINE_NAMES_SECONDS)
    return names


@receiver([post_save, post_delete], sender=Engine)
def forget_engine_names(**_kwargs) -> None:
    cache.delete(ENGINE_NAMES_KEY)
