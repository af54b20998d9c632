"""API clients: their tokens, scopes and rate limit, whose employee a call is for, and what it may reach.

A client (a service desk, a chat assistant) calls the API on behalf of an employee it names; every
rule of the browser path applies to that employee (actions/api/ calls the same domain functions).
What the client adds is narrower, never wider: its scopes, and the actions or categories it may use.
The one exception, "devices:any", lets an IT staff member named by the call (who holds the
"run an action on any device" permission, as in the admin) run on another person's device.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from actions.catalog.selectors import actions_visible_to, visible_action
from actions.devices.ownership import device_for_user
from actions.devices.resolution import resolve_devices_for
from actions.models import RUN_ON_ANY_DEVICE, ApiCall, ApiClient, Device, RemoteAction, Run
from actions.security import security_event
from actions.uids import DEVICE_UID_RE

CATALOG_READ = "catalog:read"  # the actions an employee may run, and their devices
RUNS_SUBMIT = "runs:submit"  # run an action on behalf of an employee
RUNS_READ = "runs:read"  # read an employee's runs
FEEDBACK_WRITE = "feedback:write"  # answer "did this fix it?"
TICKETS_CREATE = "tickets:create"  # ask IT for help about a run (a service desk ticket)
DEVICES_ANY = "devices:any"  # IT support: run on a device that is not the named employee's own
SCOPES = {
    CATALOG_READ: _("Read the catalog and devices of an employee"),
    RUNS_SUBMIT: _("Run actions on behalf of an employee"),
    RUNS_READ: _("Read an employee's runs"),
    FEEDBACK_WRITE: _("Answer “did this fix it?” for an employee"),
    TICKETS_CREATE: _("Ask IT for help (open a ticket) for an employee"),
    DEVICES_ANY: _("Any device: IT staff named in the call may run on other people's devices"),
}
PREFIX = "fmd_"  # what every client secret starts with (easy to spot in a leak scanner)
TOKEN_MAX_LENGTH = 200
EMPLOYEE_MAX_LENGTH = 254
RATE_WINDOW = timedelta(minutes=1)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def client_create(*, name: str, scopes: list[str], owner=None, secret: str = "", **fields) -> tuple[ApiClient, str]:
    """A new client and its secret: shown once, stored only as its digest. `secret`: a fixed one (the demo)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(unknown)}")
    secret = secret or new_secret()
    client = ApiClient.objects.create(
        name=name,
        owner=owner,
        scopes=sorted(scopes),
        secret_hash=hash_secret(secret),
        secret_hint=secret[:12],
        **fields,
    )
    return client, secret


def client_new_secret(client: ApiClient) -> str:
    """A new secret for the client (the old one stops working at once); shown once."""
    secret = new_secret()
    ApiClient.objects.filter(pk=client.pk).update(secret_hash=hash_secret(secret), secret_hint=secret[:12])
    client.secret_hash, client.secret_hint = hash_secret(secret), secret[:12]
    return secret


def client_revoke(client: ApiClient) -> None:
    """Refused from the next call on."""
    ApiClient.objects.filter(pk=client.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def client_for_token(token: str) -> ApiClient | None:
    """The client whose secret this is, unless revoked or expired; None otherwise."""
    if not token or len(token) > TOKEN_MAX_LENGTH:
        return None
    now = timezone.now()
    return (
        ApiClient.objects.filter(secret_hash=hash_secret(token), revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )


def has_scope(client: ApiClient, scope: str) -> bool:
    return scope in (client.scopes or [])


def retry_after(client: ApiClient, *, now: datetime | None = None) -> int | None:
    """Seconds until the client may call again, when it made API_RATE_LIMIT_PER_MINUTE calls in the last
    minute; None when it may call now. Counted from the call log, in the database, so every web process
    sees the same count (no process-local cache). Refused calls (429) do not count."""
    now = now or timezone.now()
    limit = settings.API_RATE_LIMIT_PER_MINUTE
    recent = ApiCall.objects.filter(client=client, at__gt=now - RATE_WINDOW).exclude(status=429)
    # The limit-th newest call in the window, if there is one: when it leaves the window, one more fits.
    nth = list(recent.order_by("-at").values_list("at", flat=True)[limit - 1 : limit])
    if not nth:
        return None
    free_at = nth[0] + RATE_WINDOW
    return max(1, int((free_at - now).total_seconds() + 0.999))


def call_log(
    *, client: ApiClient | None, method: str, path: str, status: int, employee: str = "", problem: str = "", run_id=None
) -> None:
    ApiCall.objects.create(
        client=client,
        client_name=client.name if client else "",
        method=method[:10],
        path=_storable(path)[:255],
        status=status,
        employee=_storable(employee)[:EMPLOYEE_MAX_LENGTH],
        problem=problem[:40],
        run_id=run_id,
    )
    if client is not None:
        # "Last used" to the minute: one write a minute, not a lock on the client's row at every call.
        now = timezone.now()
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - RATE_WINDOW)
        ApiClient.objects.filter(stale, pk=client.pk).update(last_used_at=now)


# The call that made a run is logged as its request ends: within this long after the run's creation.
CREATING_CALL_WITHIN = timedelta(minutes=10)


def requested_through(client: ApiClient, user, run: Run) -> bool:
    """Whether `user` (IT staff) asked for this run on another person's device through this very client
    (with "devices:any"): then the client may read it for them, besides the runs that are their own.

    Read from the call log: the client's successful POST that returned the run, found by the log's
    (client, time) index right after the run's creation. So such a run stays readable as long as
    API_CALL_LOG_DAYS keeps that call.
    """
    if not has_scope(client, DEVICES_ANY) or run.requested_by_id is None or run.requested_by_id != user.pk:
        return False
    return ApiCall.objects.filter(
        client=client,
        at__gte=run.created_at,
        at__lt=run.created_at + CREATING_CALL_WITHIN,
        method="POST",
        status=201,
        run_id=run.pk,
    ).exists()


def calls_prune() -> int:
    """Beat: delete the call log's rows older than API_CALL_LOG_DAYS. How many.

    One DELETE (nothing refers to a call, so Django deletes without reading them first): hourly, it
    removes about an hour of calls.
    """
    cutoff = timezone.now() - timedelta(days=settings.API_CALL_LOG_DAYS)
    return ApiCall.objects.filter(at__lt=cutoff).delete()[0]


def _storable(text: str) -> str:
    """What a caller sent, as a text column takes it: PostgreSQL refuses NUL, and lone surrogates."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def employee_named(name: str):
    """The active user with this user name, or else with this e-mail address (if only one has it); None."""
    name = (name or "").strip()
    if not name or len(name) > EMPLOYEE_MAX_LENGTH or "\x00" in name:
        return None
    users = get_user_model().objects.filter(is_active=True)
    user = users.filter(username=name).first()
    if user is None and "@" in name:
        found = list(users.filter(email__iexact=name)[:2])
        user = found[0] if len(found) == 1 else None
    return user


@dataclass(frozen=True)
class Reach:
    """What a client may reach of the catalog: None for every action the employee sees."""

    action_ids: frozenset[int] | None


def client_reach(client: ApiClient) -> Reach:
    action_ids = set(client.actions.values_list("pk", flat=True))
    category_ids = list(client.categories.values_list("pk", flat=True))
    if not action_ids and not category_ids:
        return Reach(None)
    if category_ids:
        action_ids |= set(RemoteAction.objects.filter(category__in=category_ids).values_list("pk", flat=True))
    return Reach(frozenset(action_ids))


def actions_for(client: ApiClient, user) -> QuerySet[RemoteAction]:
    """The actions the employee sees (the catalog's rule) that the client may use."""
    actions = actions_visible_to(user)
    reach = client_reach(client)
    if reach.action_ids is not None:
        actions = actions.filter(pk__in=reach.action_ids)
    return actions


def action_for(client: ApiClient, user, slug: str) -> RemoteAction | None:
    """The action page's own read (visible_action), narrowed to what the client may use."""
    if "\x00" in slug or len(slug) > 120:  # names no action (and PostgreSQL refuses NUL in text)
        return None
    action = visible_action(user, slug)
    if action is None:
        return None
    reach = client_reach(client)
    if reach.action_ids is not None and action.pk not in reach.action_ids:
        return None
    return action


# --- The device a run is for ----------------------------------------------------------------------


class NotYourDevice(Exception):
    """The device is not the employee's (nor, with "devices:any", a device IT staff may act on)."""


class DeviceNeeded(ValueError):
    """No device named, and the employee has none or several: the words say which."""


@dataclass(frozen=True)
class Target:
    device: Device
    user: object  # whom the run is for: the device's owner
    requested_by: object | None  # IT staff acting for the owner ("devices:any"), else None


def run_target(*, client: ApiClient, user, uid: str | None, source_address: str = "") -> Target:
    """The device a call's run is for, by the browser path's rules.

    Named: device_for_user (the employee's own, confirmed as the action page confirms it). With the
    client's "devices:any" scope, a device that is not the employee's may be named when the employee
    is IT staff holding the admin's "run an action on any device" permission: the run is then the
    owner's, requested by the employee, as the admin's "Run an action" makes it (and dispatch
    re-checks that permission at send time). Not named: the employee's only device.
    """
    if uid:
        uid = uid.strip()
        any_device = has_scope(client, DEVICES_ANY) and bool(DEVICE_UID_RE.fullmatch(uid))
        if any_device and not Device.objects.filter(uid=uid.lower(), owner=user).exists():
            device = (
                Device.objects.filter(uid=uid.lower(), owner__isnull=False).select_related("engine", "owner").first()
            )
            if device is None or not (user.is_staff and user.has_perm(RUN_ON_ANY_DEVICE)):
                security_event("device_not_owned", user=user, device=uid, source_address=source_address, stage="api")
                raise NotYourDevice(uid)
            return Target(device=device, user=device.owner, requested_by=user)
        try:
            device = device_for_user(user, uid, source_address=source_address)
        except Http404:
            raise NotYourDevice(uid) from None
        return Target(device=device, user=user, requested_by=None)
    devices = resolve_devices_for(user).devices
    if not devices:
        raise DeviceNeeded("The portal knows no device of this employee.")
    if len(devices) > 1:
        raise DeviceNeeded("The employee has several devices: name one (see their devices).")
    try:
        device = device_for_user(user, devices[0].uid, source_address=source_address, known=devices)
    except Http404:
        raise NotYourDevice(devices[0].uid) from None
    return Target(device=device, user=user, requested_by=None)
