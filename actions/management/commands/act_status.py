import json

from django.conf import settings

from actions.nexthink.errors import ActApiError, ActInputError
from actions.nexthink.infinity.client import infinity_client_from_settings

from .act_run import JsonCommand


class Command(JsonCommand):
    help = (
        "Infinity only: what became of a request on its devices, read with the saved executions NQL query "
        "(NEXTHINK_NQL_EXECUTIONS_QUERY). Exit 0 when Nexthink answered, 1 on an API or transport error, "
        "2 on bad arguments (nothing sent)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--request", default="", metavar="REQUEST_ID", help="the requestId act_run printed")
        parser.add_argument("--device", default=None, metavar="COLLECTOR_UID", help="one device (default: all)")
        parser.add_argument(
            "--workflow",
            action="store_true",
            help="a workflow's request: read with NEXTHINK_NQL_WORKFLOW_EXECUTIONS_QUERY (outcome as outputs)",
        )
        parser.add_argument("--json", action="store_true", help="print exactly one JSON document on stdout")

    def handle(self, *args, **options):
        as_json = options["json"]
        try:
            if settings.NEXTHINK_PLATFORM != "infinity":
                raise ActInputError("act_status needs NEXTHINK_PLATFORM=infinity (classic answers at once).")
            client = infinity_client_from_settings()
            read = client.workflow_executions if options["workflow"] else client.executions
            executions = read(options["request"], options["device"])
        except ActInputError as exc:
            self._fail(exc, as_json, exit_code=2)
        except ActApiError as exc:
            self._fail(exc, as_json, exit_code=1)
        if as_json:
            self.stdout.write(json.dumps({"executions": [e.as_dict() for e in executions]}))
            return
        if not executions:
            self.stdout.write("No execution yet (Nexthink may not have recorded the request yet).")
        for execution in executions:
            line = f"{execution.device}  {execution.status} ({execution.raw_status})"
            self.stdout.write(line + (f"  {execution.status_details}" if execution.status_details else ""))
            for name, value in execution.outputs.items():
                self.stdout.write(f"    {name} = {value}")
