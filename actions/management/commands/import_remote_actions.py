"""Create or update portal actions from Nexthink Infinity's remote action list (API-enabled ones)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from actions.catalog.nexthink_import import (
    RemoteActionImport,
    remote_actions_import,
    workflow_summary,
    workflows_import,
)
from actions.nexthink.errors import ActApiError
from actions.nexthink.infinity.client import infinity_client_from_settings


class Command(BaseCommand):
    help = (
        "Read Nexthink Infinity's remote actions (GET /api/v1/act/remote-action) and create or update a "
        "portal action for each API-enabled one, its inputs as parameters. New actions are disabled until "
        "a curator enables them; a re-run changes nothing. Then the same for the workflows Nexthink lists for "
        "the API (GET /api/v1/workflows), as catalog entries of kind workflow. Exit 1 if any action was "
        "rejected or Nexthink could not be read."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Show what would change; change nothing.")

    def handle(self, *args, dry_run=False, **options):
        if settings.NEXTHINK_PLATFORM != "infinity":
            raise CommandError(
                "import_remote_actions needs NEXTHINK_PLATFORM=infinity; on classic, curate in the admin."
            )
        try:
            remote = infinity_client_from_settings().remote_actions()
        except ActApiError as exc:
            raise CommandError(f"Could not read Nexthink's remote actions: {exc.message}", returncode=1) from None
        report = remote_actions_import(remote, dry_run=dry_run)
        prefix = "[dry run] " if dry_run else ""
        self._show(report, prefix, skipped="skipped, API trigger not enabled in Nexthink", gone="as API-enabled ")
        self.stdout.write(prefix + report.summary())
        rejected = len(report.rejected) + self._workflows(prefix, dry_run)
        if rejected:
            raise CommandError(f"{rejected} action(s) or workflow(s) rejected; see above.", returncode=1)

    def _workflows(self, prefix: str, dry_run: bool) -> int:
        """Import the workflows; how many were rejected. A credential without the Workflows API is told, not fatal."""
        try:
            workflows = infinity_client_from_settings().workflows()
        except ActApiError as exc:
            self.stdout.write(f"{prefix}workflows not imported: could not read Nexthink's workflows: {exc.message}")
            return 0
        report = workflows_import(workflows, dry_run=dry_run)
        self._show(report, prefix + "workflow ", skipped="skipped, not active in Nexthink")
        self.stdout.write(f"{prefix}Workflows: {workflow_summary(report)}")
        return len(report.rejected)

    def _show(self, report: RemoteActionImport, prefix: str, *, skipped: str, gone: str = "") -> None:
        for label in report.created:
            self.stdout.write(f"{prefix}created (disabled): {label}")
        for label, changes in report.updated:
            self.stdout.write(f"{prefix}updated: {label}: {'; '.join(changes)}")
        for label in report.skipped:
            self.stdout.write(f"{prefix}{skipped}: {label}")
        for label, reason in report.rejected:
            self.stdout.write(f"{prefix}rejected: {label}: {reason}")
        for label in report.not_listed:
            self.stdout.write(f"{prefix}no longer listed {gone}by Nexthink (left as it is): {label}")
