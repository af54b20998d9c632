from django.core.management.base import BaseCommand, CommandError

from actions.devices.engines import engines_sync
from actions.nexthink.errors import ActApiError


class Command(BaseCommand):
    help = "Update the Engines from Nexthink's List Engines API (also run periodically by Celery beat)."

    def handle(self, *args, **options):
        try:
            result = engines_sync()
        except ActApiError as exc:
            raise CommandError(f"Could not list the Engines: {exc.message}") from None
        if result.empty_answer:
            self.stderr.write("Nexthink listed no Engine at all; the Engines were left as they are.")
            return
        for label, names in (
            ("created", result.created),
            ("updated", result.updated),
            ("unchanged", result.unchanged),
            ("no longer listed", result.not_listed),
        ):
            self.stdout.write(f"{label}: {len(names)}" + (f" ({', '.join(names)})" if names else ""))
        if result.skipped:
            self.stderr.write(f"skipped: {result.skipped} entries without a valid databaseUID")
