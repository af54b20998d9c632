import getpass
import json
import sys
import uuid

from django.conf import settings
from django.core.management.base import BaseCommand

from actions.nexthink.classic.client import client_from_settings
from actions.nexthink.errors import ActApiError, ActInputError
from actions.nexthink.infinity.client import Accepted, TriggerInfo, infinity_client_from_settings


class JsonCommand(BaseCommand):
    """A command whose --json holds for every outcome, argparse's own refusals included (exit 2)."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parse_args = parser.parse_args

        def remember_json(args=None, namespace=None):
            self._wants_json = "--json" in (sys.argv[1:] if args is None else args)
            return parse_args(args, namespace)

        parser.parse_args = remember_json
        parser.error = self._usage_error  # so that --json holds even for arguments argparse refuses
        return parser

    def _usage_error(self, message: str):
        self._fail(ActInputError(f"Bad arguments: {message}."), getattr(self, "_wants_json", False), exit_code=2)

    def _fail(self, exc: ActApiError, as_json: bool, exit_code: int):
        if as_json:
            self.stdout.write(json.dumps({"error": self._error_document(exc)}))
        else:
            status = f" (HTTP {exc.http_status})" if exc.http_status else ""
            self.stderr.write(f"{exc.code or exc.reason}{status}, {exc.kind}: {exc.message}")
        sys.exit(exit_code)

    def _error_document(self, exc: ActApiError) -> dict:
        if settings.NEXTHINK_PLATFORM == "infinity":
            return exc.as_dict() | {"reason": exc.reason}
        return exc.as_dict()


class Command(JsonCommand):
    help = (
        "Send one run to Nexthink now, through the portal's client (NEXTHINK_PLATFORM picks the API). "
        "Classic: print what each Engine answered. Infinity: print the request id. Exit 0 when Nexthink "
        "accepted it, 1 on an API or transport error, 2 on bad arguments (nothing sent)."
    )

    def add_arguments(self, parser):
        # Checked in handle(), not by argparse, so that --json reports every bad argument as JSON.
        parser.add_argument(
            "--action", default="", metavar="ID", help="remote action: a GUID (classic) or '#nql_id' (infinity)"
        )
        parser.add_argument(
            "--device", action="append", default=[], metavar="UID", help="device UID or Collector UID (repeat)"
        )
        parser.add_argument(
            "--engine", action="append", default=[], metavar="UID", help="Engine database UID (classic)"
        )
        parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="parameter (repeat)")
        parser.add_argument("--timeout", metavar="SECONDS", help="timeoutSeconds (classic; default: settings)")
        parser.add_argument(
            "--expires-minutes", metavar="N", help="expiresInMinutes (infinity, 60 to 10080; default: settings)"
        )
        parser.add_argument(
            "--workflow", default="", metavar="ID", help="infinity: a workflow's '#nql_id' instead of --action"
        )
        parser.add_argument("--upn", default="", metavar="EMAIL", help="workflow: the employee's principal name")
        parser.add_argument("--json", action="store_true", help="print exactly one JSON document on stdout")

    def handle(self, *args, **options):
        if settings.NEXTHINK_PLATFORM == "infinity":
            self._handle_infinity(options)
            return
        as_json = options["json"]
        try:
            if options["expires_minutes"] is not None:
                raise ActInputError("--expires-minutes is for NEXTHINK_PLATFORM=infinity; use --timeout.")
            if options["workflow"] or options["upn"]:
                raise ActInputError(
                    "--workflow and --upn are for NEXTHINK_PLATFORM=infinity: classic has no workflows."
                )
            params = parse_params(options["param"])
            timeout = parse_timeout(options["timeout"])
            answers = client_from_settings().run(
                remote_action_uid=options["action"],
                device_uids=options["device"],
                engine_uids=options["engine"] or None,
                timeout_seconds=timeout,
                params=params or None,
            )
        except ActInputError as exc:
            self._fail(exc, as_json, exit_code=2)
        except ActApiError as exc:
            self._fail(exc, as_json, exit_code=1)
        if as_json:
            self.stdout.write(json.dumps([a.as_dict() for a in answers]))
            return
        for answer in answers:
            line = f"{answer.database_uid}  {answer.raw_code}"
            self.stdout.write(line + (f"  {answer.message}" if answer.message else ""))

    def _handle_infinity(self, options):
        as_json = options["json"]
        try:
            if options["engine"] or options["timeout"] is not None:
                raise ActInputError(
                    "--engine and --timeout are for the classic API; on Infinity use --expires-minutes."
                )
            params = parse_params(options["param"])
            expires = parse_expires(options["expires_minutes"])
            if options["workflow"]:
                accepted = self._workflow(options, params, expires)
            else:
                accepted = infinity_client_from_settings().execute(
                    remote_action_id=options["action"],
                    devices=options["device"],
                    params=params,
                    expires_in_minutes=expires,
                    trigger_info=TriggerInfo(
                        reason=f"Tried by hand with manage.py act_run by {_local_user()}",
                        external_reference=f"act_run-{uuid.uuid4()}",
                    ),
                )
        except ActInputError as exc:
            self._fail(exc, as_json, exit_code=2)
        except ActApiError as exc:
            self._fail(exc, as_json, exit_code=1)
        if as_json:
            self.stdout.write(json.dumps(accepted.as_dict()))
            return
        workflow = " --workflow" if options["workflow"] else ""
        self.stdout.write(
            f"Accepted: request {accepted.request_id}, expires in {accepted.expires_in_minutes} minutes "
            f"(follow it up with manage.py act_status{workflow} --request {accepted.request_id} --device ...)"
        )

    @staticmethod
    def _workflow(options, params: dict[str, str], expires: int) -> Accepted:
        if options["action"]:
            raise ActInputError("Give --action or --workflow, not both.")
        if len(options["device"]) != 1:
            raise ActInputError("A workflow is run on one --device here.")
        return infinity_client_from_settings().execute_workflow(
            workflow_id=options["workflow"],
            device=options["device"][0],
            user_upn=options["upn"],
            params=params,
            follow_minutes=expires,
        )


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "an administrator"


def parse_expires(raw: str | None) -> int:
    if raw is None:
        return settings.NEXTHINK_EXPIRES_MINUTES
    try:
        minutes = int(raw)
    except ValueError:
        raise ActInputError(f"--expires-minutes must be a whole number of minutes, got {raw!r}.") from None
    if not 60 <= minutes <= 10080:
        raise ActInputError(f"--expires-minutes must be from 60 to 10080, got {minutes}.")
    return minutes


def parse_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ActInputError(f"--param must look like NAME=VALUE, got {pair!r}.")
        if name in params:
            raise ActInputError(f"--param {name} is given twice.")
        params[name] = value
    return params


def parse_timeout(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        timeout = int(raw)
    except ValueError:
        raise ActInputError(f"--timeout must be a whole number of seconds, got {raw!r}.") from None
    if not 1 <= timeout <= settings.NEXTHINK_MAX_TIMEOUT_SECONDS:
        raise ActInputError(
            f"--timeout must be from 1 to {settings.NEXTHINK_MAX_TIMEOUT_SECONDS} seconds, got {timeout}."
        )
    return timeout
