import json
import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from actions.nexthink.client import client_from_settings
from actions.nexthink.errors import ActApiError, ActInputError


class Command(BaseCommand):
    help = (
        "Send one run to the Act API v2 now, through the portal's client, and print what each Engine "
        "answered. Exit 0 on a 200, 1 on an API or transport error, 2 on bad arguments (nothing sent)."
    )

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

    def add_arguments(self, parser):
        # Checked in handle(), not by argparse, so that --json reports every bad argument as JSON.
        parser.add_argument("--action", default="", metavar="GUID", help="remote action UID (required)")
        parser.add_argument("--device", action="append", default=[], metavar="UID", help="device UID (repeat)")
        parser.add_argument("--engine", action="append", default=[], metavar="UID", help="Engine database UID")
        parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="parameter (repeat)")
        parser.add_argument("--timeout", metavar="SECONDS", help="timeoutSeconds (default: settings)")
        parser.add_argument("--json", action="store_true", help="print exactly one JSON document on stdout")

    def handle(self, *args, **options):
        as_json = options["json"]
        try:
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

    def _fail(self, exc: ActApiError, as_json: bool, exit_code: int):
        if as_json:
            self.stdout.write(json.dumps({"error": exc.as_dict()}))
        else:
            status = f" (HTTP {exc.http_status})" if exc.http_status else ""
            self.stderr.write(f"{exc.code or exc.reason}{status}, {exc.kind}: {exc.message}")
        sys.exit(exit_code)


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
