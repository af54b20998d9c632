"""Import devices and their owners from a CSV file: uid, name, owner username[, engine database UID].

A header line (starting with "uid") is optional. Lines with errors are reported and skipped; the
other lines are imported. Running the same file again changes nothing.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from actions.models import Device, Engine
from actions.nexthink.client import DEVICE_UID_RE

MAX_NAME_LENGTH = 255


@dataclass
class Line:
    number: int
    uid: str
    name: str
    owner_id: int
    engine_id: int | None


class Command(BaseCommand):
    help = "Import devices from a CSV file (uid, name, owner username, optional engine database UID)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the CSV file, UTF-8 (a byte order mark is fine)")
        parser.add_argument("--dry-run", action="store_true", help="check and report, change nothing")

    def handle(self, *args, **options):
        try:
            with open(options["file"], encoding="utf-8-sig", newline="") as handle:
                rows = list(csv.reader(handle))
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}.") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise CommandError(f"{options['file']} is not a UTF-8 CSV file ({exc}).") from None

        lines, errors = self.check(rows)
        for number, message in errors:
            self.stderr.write(f"line {number}: {message}")
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        if not options["dry_run"]:
            with transaction.atomic():
                for line in lines:
                    counts[self.save(line)] += 1
        verb = "would import" if options["dry_run"] else "imported"
        self.stdout.write(
            f"{verb} {len(lines)} line(s): {counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged; {len(errors)} line(s) with errors"
            if not options["dry_run"]
            else f"{verb} {len(lines)} line(s); {len(errors)} line(s) with errors"
        )
        if errors:
            raise CommandError(f"{len(errors)} line(s) were not imported; see above.")

    def check(self, rows: list[list[str]]) -> tuple[list[Line], list[tuple[int, str]]]:
        user_model = get_user_model()
        names = {row[2].strip() for row in rows if len(row) >= 3}
        users = dict(
            user_model.objects.filter(**{f"{user_model.USERNAME_FIELD}__in": names}).values_list(
                user_model.USERNAME_FIELD, "pk"
            )
        )
        engines = dict(Engine.objects.values_list("database_uid", "pk"))
        lines: list[Line] = []
        errors: list[tuple[int, str]] = []
        seen: dict[str, int] = {}
        for number, row in enumerate(rows, start=1):
            cells = [cell.strip() for cell in row]
            if not any(cells):
                continue
            if number == 1 and cells[0].lower() == "uid":
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

    def save(self, line: Line) -> str:
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
