"""Which devices belong to an employee, and the check that nobody acts on another's device.

Resolvers, run in the order of settings.DEVICE_RESOLVERS (which is also their precedence):

- ``directory``: devices assigned to the user in the admin (source "manual") or by
  ``manage.py import_devices`` (source "import").
- ``nxql``: each connected Engine is asked, over its NXQL API, for the devices whose
  ``last_logged_on_user`` is the user's Nexthink name (NXQL_USER_NAME_TEMPLATE). The answers are
  kept in Device rows (source "nxql", ``confirmed_at``) and reused for NXQL_CACHE_TTL_SECONDS. A
  fresh answer moves a device to whoever the Engine now names, and releases the user's cached
  devices that an Engine that answered no longer lists; devices of an Engine that could not be
  asked are kept but offered only while still within the TTL. When "directory" comes before "nxql",
  NXQL never changes a device assigned in the admin or imported.

Ownership is checked on the server: ``device_for_user`` at submit time (full rules: resolver
enabled, NXQL answer within the TTL, asking again if it is older), the dispatch's read of the run at
send time (the owner column only, no HTTP). Both log a security event on "actions.security"
when the device is not the user's.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from actions.compiled import compiled_instances, joined_columns
from actions.devices.engines import connected_engines
from actions.models import Device, Engine
from actions.nexthink.classic.client import ActClient, client_from_settings
from actions.nexthink.classic.nxql import NxqlDevice, check_user_name, engine_base_url, query_devices_of_user
from actions.nexthink.device_platforms import device_platform
from actions.nexthink.errors import ActApiError
from actions.uids import COLLECTOR_UID_RE

log = logging.getLogger(__name__)

DIRECTORY_SOURCES = (Device.Source.MANUAL, Device.Source.IMPORT)
MAX_PARALLEL_ENGINES = 8
_FORBIDDEN_USER_FIELDS = {"password"}


@dataclass
class Resolution:
    devices: list[Device]  # the user's own, most recently seen first
    unreachable_engines: list[str] = field(default_factory=list)  # names of Engines NXQL could not ask


# --- Resolution ----------------------------------------------------------------------------------


def resolve_devices_for(user) -> Resolution:
    """The user's own devices, most recently seen first, and the Engines that could not be asked."""
    if not getattr(user, "is_authenticated", False):
        return Resolution(devices=[])
    found: dict[str, Device] = {}
    unreachable: list[str] = []
    for resolver in settings.DEVICE_RESOLVERS:
        if resolver == "directory":
            # Every action page and form POST: one query compiled once per process (actions/compiled.py).
            devices = compiled_instances(Device, _directory_rows, user.pk, related=("engine",))
        elif resolver == "nxql":
            devices, down = nxql_resolve(user)
            unreachable.extend(down)
        elif resolver == "nql":
            devices, down = nql_resolve(user)
            unreachable.extend(down)
        else:  # settings.py refuses other names; a test override could still slip one in
            raise ValueError(f"unknown device resolver {resolver!r}")
        for device in devices:
            found.setdefault(device.uid, device)
    return Resolution(devices=sort_devices(found.values()), unreachable_engines=unreachable)


def learn_devices(user) -> bool:
    """Find the user's devices when the portal knows none of them yet; True if it found some.

    The catalog offers actions by the systems of the devices it knows (actions/catalog/selectors.py):
    a first visit asks Nexthink, as the action page would. A user with no device at all is asked for
    at most once per NXQL_RECHECK_SECONDS (per process), so the catalog does not ask on every view.
    """
    if not getattr(user, "is_authenticated", False):
        return False
    key = f"devices-learned:{user.pk}"
    if cache.get(key):
        return False
    cache.set(key, True, timeout=settings.NXQL_RECHECK_SECONDS)
    return bool(resolve_devices_for(user).devices)


def sort_devices(devices: Iterable[Device]) -> list[Device]:
    """Most recently seen first; never seen last; then by name."""
    return sorted(
        devices,
        key=lambda d: (d.last_seen_at is None, -d.last_seen_at.timestamp() if d.last_seen_at else 0, d.name.lower()),
    )


def _directory_rows(user_id: int) -> QuerySet[Device]:
    """The user's devices from the directory, each with its Engine (columns for compiled_instances)."""
    return Device.objects.filter(owner_id=user_id, source__in=DIRECTORY_SOURCES).values_list(
        *joined_columns(Device, ("engine",))
    )


def nxql_fresh_after() -> datetime:
    return timezone.now() - timedelta(seconds=settings.NXQL_CACHE_TTL_SECONDS)


def nxql_resolve(user, *, force: bool = False) -> tuple[list[Device], list[str]]:
    fresh_after = nxql_fresh_after()
    cached = list(Device.objects.filter(owner=user, source=Device.Source.NXQL).select_related("engine"))
    if not force and cached and all(d.confirmed_at and d.confirmed_at > fresh_after for d in cached):
        return cached, []
    asked_key = f"nxql-asked:{user.pk}"
    if not force and cache.get(asked_key):
        # Every Engine answered a moment ago: do not ask them all again on each page view.
        return [d for d in cached if d.confirmed_at and d.confirmed_at > fresh_after], []
    unreachable = nxql_refresh(user=user)
    if not unreachable:
        cache.set(asked_key, True, timeout=settings.NXQL_RECHECK_SECONDS)
    fresh = Device.objects.filter(owner=user, source=Device.Source.NXQL, confirmed_at__gt=fresh_after)
    return list(fresh.select_related("engine")), unreachable


# --- NXQL ------------------------------------------------------------------------------------------


def nexthink_user_name(user) -> str | None:
    """The user's name as Nexthink shows last_logged_on_user, from NXQL_USER_NAME_TEMPLATE; None if unknown.

    Every field must give a non-empty value: an empty name would match devices nobody logged on to.
    """
    values: dict[str, str] = {}
    for _, name, spec, conversion in string.Formatter().parse(settings.NXQL_USER_NAME_TEMPLATE):
        if name is None:
            continue
        if not name.isidentifier() or name.startswith("_") or name in _FORBIDDEN_USER_FIELDS or spec or conversion:
            raise ValueError(f"NXQL_USER_NAME_TEMPLATE: {{{name}}} is not a usable user field")
        if name == "email_local":
            value = (getattr(user, "email", "") or "").partition("@")[0]
        else:
            value = getattr(user, name, None)
        if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
            return None
        values[name] = str(value).strip()
    return settings.NXQL_USER_NAME_TEMPLATE.format_map(values)


def engine_nxql_client(engine: Engine, *, base: ActClient | None = None) -> ActClient:
    """An ActClient for this Engine's NXQL API: the Act API client's seam, the NXQL address and credentials."""
    url = engine_base_url(
        settings.NXQL_URL_TEMPLATE,
        address=engine.address,
        nxql_port=engine.nxql_port,
        port=engine.port,
        name=engine.name,
        database_uid=engine.database_uid,
    )
    return (base or client_from_settings()).for_base_url(
        url,
        username=settings.NXQL_USERNAME,
        password=settings.NXQL_PASSWORD,
        default_timeout=settings.NXQL_TIMEOUT_SECONDS,
    )


def nxql_refresh(*, user) -> list[str]:
    """Ask every connected Engine for the user's devices and store the answers; returns the Engines not asked."""
    nexthink_user = nexthink_user_name(user)
    if not nexthink_user:
        log.info("NXQL: no Nexthink user name for %s (NXQL_USER_NAME_TEMPLATE); not asked", user.get_username())
        return []
    try:
        check_user_name(nexthink_user)
    except ValueError as exc:
        log.warning("NXQL: cannot ask for %s: %s", user.get_username(), exc)
        return []
    engines = list(connected_engines())
    if not engines:
        return []
    resting = [engine for engine in engines if engine_resting(engine)]
    asked = [engine for engine in engines if engine not in resting]
    answers = ask_engines(asked, nexthink_user) if asked else {}
    answered = [(engine, devices) for engine in asked if (devices := answers.get(engine.pk)) is not None]
    _store_nxql_answers(user=user, answered=answered, now=timezone.now())
    return [engine.name for engine in engines if answers.get(engine.pk) is None]


# --- Asking Engines without letting one hold a page -------------------------------------------------
# A failed or late Engine is not asked again for NXQL_ENGINE_REST_SECONDS (per process: Django's
# cache), and all Engines together get NXQL_PAGE_BUDGET_SECONDS: a page never waits longer than that
# for NXQL, however many Engines hang. An answer that comes after the budget is dropped.


def engine_resting(engine: Engine) -> bool:
    return bool(cache.get(_rest_key(engine)))


def rest_engine(engine: Engine) -> None:
    cache.set(_rest_key(engine), True, timeout=settings.NXQL_ENGINE_REST_SECONDS)
    log.warning("NXQL: Engine %s not asked again for %s s", engine.name, settings.NXQL_ENGINE_REST_SECONDS)


def _rest_key(engine: Engine) -> str:
    return f"nxql-rest:{engine.pk}"


def ask_engines(engines: list[Engine], nexthink_user: str) -> dict[int, list[NxqlDevice] | None]:
    """Each Engine's answer (None: no usable answer), asked in parallel within the page's budget."""
    base = client_from_settings()

    def ask(engine: Engine) -> list[NxqlDevice] | None:
        try:
            return query_devices_of_user(
                engine_nxql_client(engine, base=base),
                nexthink_user=nexthink_user,
                platforms=settings.NXQL_PLATFORMS,
                engine_label=engine.name,
            )
        except ActApiError as exc:
            log.warning("NXQL: Engine %s could not be asked: %s", engine.name, exc)
        except Exception:  # one Engine's surprise must not stop the others
            log.exception("NXQL: Engine %s failed unexpectedly", engine.name)
        return None

    pool = ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_ENGINES, len(engines)), thread_name_prefix="nxql")
    futures = {pool.submit(ask, engine): engine for engine in engines}
    done, late = wait(futures, timeout=settings.NXQL_PAGE_BUDGET_SECONDS)
    pool.shutdown(wait=False, cancel_futures=True)  # late calls end on their own timeouts; nobody waits
    answers: dict[int, list[NxqlDevice] | None] = {}
    for future, engine in futures.items():
        answers[engine.pk] = future.result() if future in done else None
        if answers[engine.pk] is None:
            rest_engine(engine)
    if late:
        log.warning("NXQL: %s Engine(s) did not answer within %s s", len(late), settings.NXQL_PAGE_BUDGET_SECONDS)
    return answers


def _directory_has_precedence() -> bool:
    resolvers = list(settings.DEVICE_RESOLVERS)
    return "directory" in resolvers and (
        "nxql" not in resolvers or resolvers.index("directory") < resolvers.index("nxql")
    )


@transaction.atomic
def _store_nxql_answers(*, user, answered: list[tuple[Engine, list[NxqlDevice]]], now: datetime) -> None:
    directory_first = _directory_has_precedence()
    listed: set[str] = set()
    for engine, devices in answered:
        for found in devices:
            listed.add(found.uid)
            existing = Device.objects.select_for_update().filter(uid=found.uid).first()
            if existing is not None and existing.source != Device.Source.NXQL and directory_first:
                log.info("NXQL: device %s is assigned in the directory; NXQL leaves it alone", found.uid)
                continue
            if existing is not None and existing.owner_id not in (None, user.pk):
                log.info(
                    "NXQL: device %s moves from user #%s to %s (Engine %s)",
                    found.uid,
                    existing.owner_id,
                    user.get_username(),
                    engine.name,
                )
            values = {
                "name": found.name[:255],
                "owner": user,
                "engine": engine,
                "platform": device_platform(found.platform),
                "source": Device.Source.NXQL,
                "confirmed_at": now,
            }
            if found.last_seen is not None:
                values["last_seen_at"] = found.last_seen
            Device.objects.update_or_create(uid=found.uid, defaults=values)
    # The user's cached devices that an Engine which answered no longer lists are no longer theirs.
    released = _release(
        Device.objects.filter(
            owner=user, source=Device.Source.NXQL, engine__in=[engine for engine, _ in answered]
        ).exclude(uid__in=listed),
        now=now,
    )
    if released:
        log.info("NXQL: %d cached device(s) no longer %s's", released, user.get_username())


# --- NQL (Nexthink Infinity) -----------------------------------------------------------------------
NEXTHINK_NAME = "Nexthink"  # what the page names when Infinity's NQL API did not answer


def nql_resolve(user, *, force: bool = False) -> tuple[list[Device], list[str]]:
    """The user's devices from Infinity's saved devices query, cached like NXQL's answers."""
    fresh_after = nxql_fresh_after()
    cached = list(Device.objects.filter(owner=user, source=Device.Source.NQL))
    if not force and cached and all(d.confirmed_at and d.confirmed_at > fresh_after for d in cached):
        return cached, []
    nexthink_user = nexthink_user_name(user)
    if not nexthink_user:
        return [], []
    from actions.nexthink.infinity.client import infinity_client_from_settings

    try:
        found = infinity_client_from_settings().devices_of_user(nexthink_user)
    except ActApiError as exc:
        log.warning("NQL: the devices of %s could not be read: %s", user.get_username(), exc)
        return [d for d in cached if d.confirmed_at and d.confirmed_at > fresh_after], [NEXTHINK_NAME]
    _store_nql_answer(user=user, found=found, now=timezone.now())
    return list(Device.objects.filter(owner=user, source=Device.Source.NQL, confirmed_at__gt=fresh_after)), []


@transaction.atomic
def _store_nql_answer(*, user, found, now: datetime) -> None:
    listed = set()
    directory_first = _directory_has_precedence()
    for device in found:
        uid = device.collector_uid.lower()
        if not COLLECTOR_UID_RE.fullmatch(uid):
            log.warning("NQL: skipping a device whose Collector UID is not a UUID: %r", uid[:64])
            continue
        existing = Device.objects.select_for_update().filter(uid=uid).first()
        if existing is not None and existing.source in DIRECTORY_SOURCES and directory_first:
            continue
        listed.add(uid)
        values = {
            "name": device.name[:255] or uid,
            "owner": user,
            "platform": device_platform(device.platform),
            "source": Device.Source.NQL,
            "confirmed_at": now,
        }
        seen = parse_datetime(device.last_seen or "") if device.last_seen else None
        if seen is not None:
            values["last_seen_at"] = seen if timezone.is_aware(seen) else timezone.make_aware(seen, UTC)
        Device.objects.update_or_create(uid=uid, defaults=values)
    _release(Device.objects.filter(owner=user, source=Device.Source.NQL).exclude(uid__in=listed), now=now)


def _release(devices: QuerySet[Device], *, now: datetime) -> int:
    """These devices are no longer their owner's: one by one, so the audit trail records each change."""
    count = 0
    for device in devices.select_for_update():
        device.owner = None
        device.confirmed_at = now
        device.save(update_fields=["owner", "confirmed_at"])
        count += 1
    return count
