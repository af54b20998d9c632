"""Create or update actions from an export_catalog file, matched by Nexthink remote action UID."""

import json

from django.core.management.base import BaseCommand, CommandError

from actions.catalog.transfer import import_catalog


class Command(BaseCommand):
    help = (
        "Import a catalog exported by export_catalog. Idempotent: actions are matched by their Nexthink "
        "remote action UID. Each action is validated like in the admin and imported whole or rejected. "
        "Exits with status 1 if any action was rejected (the others are imported)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="JSON file written by export_catalog.")
        parser.add_argument("--dry-run", action="store_true", help="Validate and report; change nothing.")

    def handle(self, *args, file, dry_run=False, **options):
        try:
            with open(file, encoding="utf-8") as f:
                data = json.load(f)
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror or exc}.") from None
        except json.JSONDecodeError as exc:
            raise CommandError(f"{file} is not valid JSON: {exc}.") from None
        try:
            report = import_catalog(data, dry_run=dry_run)
        except ValueError as exc:
            raise CommandError(str(exc)) from None

        prefix = "[dry run] " if dry_run else ""
        for label in report.created:
            self.stdout.write(f"{prefix}created: {label}")
        for label in report.updated:
            self.stdout.write(f"{prefix}updated: {label}")
        for label, reason in report.rejected:
            self.stdout.write(f"{prefix}rejected: {label}: {reason}")
        for name in report.categories_created:
            self.stdout.write(f"{prefix}created category: {name}")
        self.stdout.write(
            f"{prefix}{len(report.created)} created, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged, {len(report.rejected)} rejected."
        )
        if report.rejected:
            raise CommandError(f"{len(report.rejected)} action(s) rejected; see above.", returncode=1)
