"""Import devices and their owners from a CSV file; the rules are in actions/devices/csv_import.py."""

from django.core.management.base import BaseCommand, CommandError

from actions.devices.csv_import import UnreadableFile, import_lines, read_rows, validate_rows


class Command(BaseCommand):
    help = "Import devices from a CSV file (uid, name, owner username, optional engine database UID)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the CSV file, UTF-8 (a byte order mark is fine)")
        parser.add_argument("--dry-run", action="store_true", help="check and report, change nothing")

    def handle(self, *args, **options):
        try:
            rows = read_rows(options["file"])
        except UnreadableFile as exc:
            raise CommandError(str(exc)) from None
        lines, errors = validate_rows(rows)
        for number, message in errors:
            self.stderr.write(f"line {number}: {message}")
        if options["dry_run"]:
            self.stdout.write(f"would import {len(lines)} line(s); {len(errors)} line(s) with errors")
        else:
            counts = import_lines(lines)
            self.stdout.write(
                f"imported {len(lines)} line(s): {counts['created']} created, {counts['updated']} updated, "
                f"{counts['unchanged']} unchanged; {len(errors)} line(s) with errors"
            )
        if errors:
            raise CommandError(f"{len(errors)} line(s) were not imported; see above.")
