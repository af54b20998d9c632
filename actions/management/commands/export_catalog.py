"""Write the curated catalog (categories, actions, parameters) as JSON, for import_catalog elsewhere."""

import json

from django.core.management.base import BaseCommand

from actions.catalog.transfer import export_catalog


class Command(BaseCommand):
    help = "Export the catalog as JSON (to standard output, or to --output FILE)."

    def add_arguments(self, parser):
        parser.add_argument("-o", "--output", help="File to write instead of standard output.")

    def handle(self, *args, output=None, **options):
        data = export_catalog()
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        if output:
            with open(output, "w", encoding="utf-8") as f:
                f.write(text)
            self.stderr.write(f"Exported {len(data['actions'])} action(s) to {output}.")
        else:
            self.stdout.write(text, ending="")
