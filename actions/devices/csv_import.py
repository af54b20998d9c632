"""Devices and their owners from a CSV file: uid, name, owner username[, engine database UID].

Used by `manage.py import_devices`. A header line (starting with "uid") is optional, and so are
empty columns at the end of a line (spreadsheets often write `uid,name,owner,`). Lines with errors
are reported and skipped, by their physical line number in the file (a quoted name with a line
break spans two lines); the other lines are imported. Importing the same file again changes nothing.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from actions.models import Device, Engine
from actions.uids import DEVICE_UID_RE

MAX_NAME_LENGTH = 255
# C0 and C1 control characters, DEL, and the Unicode line and paragraph separators: a device name
# is shown on one line in pages and logs.
CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class UnreadableFile(Exception):
    """The file cannot be opened, or is not a UTF-8 CSV file."""


@dataclass
class Line:
    number: int
    uid: str
    name: str
    owner_id: int
    engine_id: int | None


def read_rows(path: str | Path) -> list[tuple[int, list[str]]]:
    """Each CSV row with the physical line it starts on. Raises UnreadableFile."""
    rows = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            while True:
                start = reader.line_num + 1  # line_num counts the lines read so far, not rows
                try:
                    row = next(reader)
                except StopIteration:
                    break
                rows.append((start, row))
    except OSError as exc:
        raise UnreadableFile(f"Cannot read {path}: {exc.strerror}.") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UnreadableFile(f"{path} is not a UTF-8 CSV file ({exc}).") from None
    return rows


def validate_rows(rows: list[tuple[int, list[str]]]) -> tuple[list[Line], list[tuple[int, str]]]:
    """The lines to import, and (line number, message) for each line that cannot be."""
    user_model = get_user_model()
    names = {row[2].strip() for _, row in rows if len(row) >= 3}
    users = dict(
        user_model.objects.filter(**{f"{user_model.USERNAME_FIELD}__in": names}).values_list(
            user_model.USERNAME_FIELD, "pk"
        )
    )
    engines = dict(Engine.objects.values_list("database_uid", "pk"))
    lines: list[Line] = []
    errors: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for index, (number, row) in enumerate(rows):
        cells = [cell.strip() for cell in row]
        while len(cells) > 3 and cells[-1] == "":
            cells.pop()
        if not any(cells):
            continue
        if index == 0 and cells[0].lower() == "uid":
            continue
        if len(cells) not in (3, 4):
            errors.append((number, f"expected 3 or 4 columns (uid, name, owner, engine), got {len(cells)}"))
            continue
        uid, name, owner, engine_uid = (*cells, "")[:4]
        if not DEVICE_UID_RE.fullmatch(uid):
            errors.append((number, f"the device UID must be 32 hexadecimal characters, got {uid[:40]!r}"))
            continue
        uid = uid.lower()
        if uid in seen:
            errors.append((number, f"device {uid} is already on line {seen[uid]}"))
            continue
        if not name or len(name) > MAX_NAME_LENGTH:
            errors.append((number, f"the name must be 1 to {MAX_NAME_LENGTH} characters"))
            continue
        if (control := CONTROL_RE.search(name)) is not None:
            errors.append(
                (number, f"the name contains a control character or line break (U+{ord(control.group()):04X})")
            )
            continue
        if owner not in users:
            errors.append((number, f"no user named {owner[:150]!r}"))
            continue
        engine_id = None
        if engine_uid:
            engine_id = engines.get(engine_uid.lower())
            if engine_id is None:
                errors.append((number, f"no Engine with database UID {engine_uid[:40]!r} (run sync_engines?)"))
                continue
        seen[uid] = number
        lines.append(Line(number=number, uid=uid, name=name, owner_id=users[owner], engine_id=engine_id))
    return lines, errors


def import_lines(lines: list[Line]) -> dict[str, int]:
    """Store the lines in one transaction; counts of devices created, updated and unchanged."""
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    with transaction.atomic():
        for line in lines:
            counts[save_line(line)] += 1
    return counts


def save_line(line: Line) -> str:
    device = Device.objects.select_for_update().filter(uid=line.uid).first()
    if device is None:
        Device.objects.create(
            uid=line.uid,
            name=line.name,
            owner_id=line.owner_id,
            engine_id=line.engine_id,
            source=Device.Source.IMPORT,
            confirmed_at=timezone.now(),
        )
        return "created"
    wanted = {"name": line.name, "owner_id": line.owner_id, "source": Device.Source.IMPORT}
    if line.engine_id is not None:  # no engine column: keep what is known
        wanted["engine_id"] = line.engine_id
    if all(getattr(device, key) == value for key, value in wanted.items()):
        return "unchanged"
    if device.owner_id != line.owner_id or device.source != Device.Source.IMPORT:
        device.confirmed_at = timezone.now()
    for key, value in wanted.items():
        setattr(device, key, value)
    device.save()
    return "updated"
