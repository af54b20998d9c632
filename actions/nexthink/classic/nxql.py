"""NXQL on each Engine: which devices a user last logged on to.

`GET https://<engine>:1671/2/query?query=...&platform=windows&format=json` with Basic auth. The HTTP
goes through ActClient (client.py): same session settings, timeouts, TLS verification, User-Agent
and error classification as the Act API. A user name never enters the query text: the query says
`%1` where it goes and the name travels as the `p1` parameter, which the Engine substitutes as a
string literal (the NXQL API's template parameters, `p1`..`pN` for `%1`..`%N`).
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from actions.uids import CLASSIC_DEVICE_UID_RE

from ..errors import ActApiError, ErrorKind
from .client import ActClient

log = logging.getLogger(__name__)

NXQL_PATH = "/2/query"
PLATFORMS = ("windows", "mac_os", "mobile")
DEVICE_FIELDS = ("device_uid", "name", "last_logged_on_user", "last_seen")
GUID_RE = re.compile(r"^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$")
# Fields an Engine URL template may use (NXQL_URL_TEMPLATE).
ENGINE_URL_FIELDS = frozenset({"address", "nxql_port", "port", "name", "database_uid"})
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class NxqlDevice:
    uid: str  # 32 lowercase hexadecimal characters
    name: str
    last_logged_on_user: str
    last_seen: datetime | None
    platform: str


# --- Building queries ----------------------------------------------------------------------------


DEVICES_OF_USER_QUERY = (
    f"(select ({' '.join(DEVICE_FIELDS)}) (from device (where device (eq last_logged_on_user (string %1)))))"
)


def check_user_name(value: str) -> None:
    """Raise ValueError for a name that cannot be a Nexthink user name: empty, or with control characters.

    An empty name would match every device without a user; line breaks, NUL... have no place in one.
    """
    if not isinstance(value, str):
        raise TypeError(f"an NXQL user name must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError("an empty user name would match every device without a user")
    if _CONTROL_RE.search(value):
        raise ValueError("an NXQL user name may not contain control characters")


def devices_of_user_request(nexthink_user: str) -> dict[str, str]:
    """The query-string parameters asking for the devices whose last logged-on user is exactly this name.

    Inside `(string ...)` an `eq` compares exactly: `*` and `?` in the name are not wildcards.
    """
    check_user_name(nexthink_user)
    return {"query": DEVICES_OF_USER_QUERY, "p1": nexthink_user}


def engine_base_url(
    template: str, *, address: str, nxql_port: int | None, port: int | None, name: str, database_uid: str
) -> str:
    """The NXQL API's base URL of one Engine, from NXQL_URL_TEMPLATE (e.g. `https://{address}:{nxql_port}`)."""
    return template.format(
        address=address, nxql_port=nxql_port or 1671, port=port or "", name=name, database_uid=database_uid
    ).rstrip("/")


def template_fields(template: str) -> set[str]:
    """The `{field}` names a str.format template uses (for validating settings)."""
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


# --- Reading answers -----------------------------------------------------------------------------


class NxqlShapeError(ActApiError):
    """The Engine answered 200 with JSON, but not the list of records a query returns."""

    def __init__(self, detail: str):
        super().__init__(
            code=None,
            reason="BAD_RESPONSE",
            message=f"Nexthink's answer could not be read: {detail}.",
            http_status=200,
            kind=ErrorKind.PERMANENT,
        )


def normalise_device_uid(raw: Any) -> str | None:
    """32 lowercase hex characters, or None. A GUID with dashes (or braces) is the same 128 bits."""
    if not isinstance(raw, str):
        return None
    raw = raw.strip()
    if GUID_RE.fullmatch(raw):
        raw = raw.strip("{}").replace("-", "")
    return raw.lower() if CLASSIC_DEVICE_UID_RE.fullmatch(raw) else None


def parse_nxql_datetime(raw: Any) -> datetime | None:
    """NXQL datetimes, as ISO 8601 text (UTC when no offset is given) or seconds since the epoch."""
    if isinstance(raw, bool) or raw is None or raw == "":
        return None
    if isinstance(raw, int | float):
        try:
            return datetime.fromtimestamp(raw, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_device_records(data: Any, *, expected_user: str, platform: str, engine_label: str) -> list[NxqlDevice]:
    """The usable records of an answer; each unusable one is skipped and logged.

    A record is used only if it has a valid device UID and its last logged-on user is the one asked
    for (compared without regard to case), so an Engine that ignored the filter cannot hand one
    employee everybody's devices.
    """
    if not isinstance(data, list):
        raise NxqlShapeError(f"expected a list of records, got {type(data).__name__}")
    devices = []
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            log.warning("NXQL on %s: record %d is not an object; skipped", engine_label, index)
            continue
        uid = normalise_device_uid(record.get("device_uid"))
        if uid is None:
            log.warning(
                "NXQL on %s: record %d has no valid device_uid (%r); skipped",
                engine_label,
                index,
                str(record.get("device_uid"))[:64],
            )
            continue
        user = record.get("last_logged_on_user")
        if not isinstance(user, str) or user.casefold() != expected_user.casefold():
            log.warning(
                "NXQL on %s: device %s is not %r's (last user %r); skipped",
                engine_label,
                uid,
                expected_user,
                str(user)[:200],
            )
            continue
        name = record.get("name")
        devices.append(
            NxqlDevice(
                uid=uid,
                name=(name if isinstance(name, str) and name.strip() else uid)[:255],
                last_logged_on_user=user,
                last_seen=parse_nxql_datetime(record.get("last_seen")),
                platform=platform,
            )
        )
    return devices


# --- Calling an Engine ---------------------------------------------------------------------------


def query_devices_of_user(
    client: ActClient, *, nexthink_user: str, platforms: Sequence[str] = ("windows",), engine_label: str = ""
) -> list[NxqlDevice]:
    """Ask one Engine (the client's base URL) for the user's devices. Raises ActApiError."""
    request = devices_of_user_request(nexthink_user)
    label = engine_label or client.base_url
    devices: list[NxqlDevice] = []
    for platform in platforms:
        data = client.get_json(NXQL_PATH, params={**request, "platform": platform, "format": "json"})
        devices.extend(parse_device_records(data, expected_user=nexthink_user, platform=platform, engine_label=label))
    return devices
