"""Demo users, Engines, devices and catalog, matching the built-in simulator. Never in production.

Only what is missing is loaded: a restarted demo keeps whatever a curator changed or added.
"""

import json
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from actions.apiclients import client_create
from actions.catalog.nexthink_import import remote_actions_import, workflows_import
from actions.catalog.transfer import import_catalog
from actions.models import ApiClient, Device, Engine, RemoteAction
from actions.nexthink.device_platforms import device_platform
from actions.nexthink.infinity.client import WORKFLOW_DEPENDENCIES, parse_remote_action, parse_workflow
from simulators import act_api as simulator
from simulators import infinity as simulator_infinity

CATALOG = Path(__file__).resolve().parents[2] / "demo" / "catalog.json"
# Infinity's demo actions come from the simulator, without the search keywords a curator adds.
INFINITY_KEYWORDS = {
    "#clear_teams_cache": "teams, chat, meeting, call, video, microsoft 365, office",
    "#repair_vpn": "vpn, remote access, working from home, network, internet, wifi, wi-fi",
    "#fix_vpn_connection": "vpn, remote access, working from home, network, internet, wifi, wi-fi, outlook, email",
    "#free_disk_space": "disk full, storage, space, slow computer, c drive",
    "#free_disk_space_with_consent": "disk full, storage, space, slow computer, c drive",
    "#restart_windows_service": "service, stuck program, printer, print spooler",
}


def demo_keywords(actions, new_ids: list[str]) -> None:
    """The search keywords of the Infinity demo's actions just added (existing ones left as they are)."""
    for nql_id, keywords in INFINITY_KEYWORDS.items():
        if nql_id in new_ids:
            actions.filter(nql_id=nql_id).update(keywords=keywords)


USERS = [  # user name, password, first name, superuser
    ("alice", "alice-demo", "Alice", False),
    ("bob", "bob-demo", "Bob", False),
    ("dana", "dana-demo", "Dana", False),  # a Mac user: offered only what runs on macOS
    ("admin", "admin-demo", "IT admin", True),
]
DEVICES = {"alice": ["LAPTOP-ALICE"], "bob": ["LAPTOP-BOB", "DESKTOP-BOB"], "dana": ["MACBOOK-DANA"]}
# The demo's API client (README "Integration API"): a fixed, published secret, so it exists only here.
DEMO_API_CLIENT = "Chat assistant (demo)"
DEMO_API_TOKEN = "fmd_demo_chat-assistant-demo-only"  # noqa: S105 (the demo's published token, never production)
DEMO_API_SCOPES = ["catalog:read", "runs:submit", "runs:read", "feedback:write", "tickets:create"]


class Command(BaseCommand):
    help = (
        "Load the demo data (users alice, bob, dana, admin). Refuses unless DEBUG is on and Nexthink is the simulator."
    )

    def handle(self, *args, **options):
        if not (settings.DEBUG and settings.NEXTHINK_USES_SIMULATOR):
            raise CommandError("Demo data is for the demo only: DEBUG=true and no NEXTHINK_PORTAL_URL.")
        self._warn_of_the_other_platform()
        if settings.NEXTHINK_PLATFORM == "infinity":
            self._infinity()
            return
        config = simulator.load_config()
        with transaction.atomic():
            users = {name: self._user(name, password, first, su) for name, password, first, su in USERS}
            engines = {e["databaseUID"]: self._engine(e) for e in config["engines"]}
            for device in config["devices"]:
                owner = next((u for u, names in DEVICES.items() if device["name"] in names), None)
                if owner:
                    self._device(device, users[owner], engines.get(device["engine"]))
            report = import_catalog(missing_actions(json.loads(CATALOG.read_text())))
            demo_api_client(owner=users["admin"])
        if report.rejected:
            raise CommandError(f"The demo catalog was rejected: {report.rejected}")
        self.stdout.write(
            f"Demo data ready: {len(users)} users, {len(engines)} Engines, "
            f"{sum(map(len, DEVICES.values()))} devices; {len(report.created)} demo action(s) added, "
            "existing ones left as they are."
        )

    def _infinity(self) -> None:
        """Nexthink Infinity's demo: the users; the simulator's API-enabled actions, enabled for everyone
        (only the ones not yet in the portal); devices come from the simulator's NQL at sign-in."""
        with transaction.atomic():
            users = [self._user(name, password, first, su) for name, password, first, su in USERS]
            actions = RemoteAction.objects.filter(kind=RemoteAction.Kind.REMOTE_ACTION)
            known = set(actions.exclude(nql_id="").values_list("nql_id", flat=True))
            config = simulator_infinity.load_config()
            listed = [parse_remote_action(item) for item in config["remote_actions"]]
            new = [action for action in listed if action is not None and action.id not in known]
            report = remote_actions_import(new)
            actions.filter(nql_id__in=[a.id for a in new]).update(enabled=True)
            demo_keywords(actions, [a.id for a in new])
            # The simulator's workflows the API may trigger on a device, as the import lists them.
            workflows = RemoteAction.objects.filter(kind=RemoteAction.Kind.WORKFLOW)
            known = set(workflows.values_list("nql_id", flat=True))
            offered = [
                parse_workflow(item)
                for item in config.get("workflows", [])
                if item.get("dependency") in WORKFLOW_DEPENDENCIES and "API" in item.get("triggerMethods", [])
            ]
            new_workflows = [w for w in offered if w is not None and w.id not in known]
            workflow_report = workflows_import(new_workflows)
            workflows.filter(nql_id__in=[w.id for w in new_workflows]).update(enabled=True)
            demo_keywords(workflows, [w.id for w in new_workflows])
            demo_api_client(owner=users[-1])
        if report.rejected or workflow_report.rejected:
            raise CommandError(f"The demo actions were rejected: {report.rejected + workflow_report.rejected}")
        self.stdout.write(
            f"Demo data ready (Nexthink Infinity): {len(users)} users; {len(report.created)} demo action(s) and "
            f"{len(workflow_report.created)} workflow(s) added and enabled, existing ones left as they are; "
            "devices are found through NQL."
        )

    def _warn_of_the_other_platform(self) -> None:
        """A PORTAL_VAR_DIR or DATABASE_URL set by hand may hold the other platform's demo: say so."""
        infinity = settings.NEXTHINK_PLATFORM == "infinity"
        other = RemoteAction.objects.filter(nql_id="") if infinity else RemoteAction.objects.exclude(nql_id="")
        if other.exists():
            self.stderr.write(
                f"This database also holds {other.count()} action(s) of the "
                f"{'classic' if infinity else 'Nexthink Infinity'} demo, which fail here. Each platform's demo "
                "keeps its own data (var/, var/infinity/) unless PORTAL_VAR_DIR or DATABASE_URL is set: "
                "give each platform its own."
            )

    @staticmethod
    def _user(name: str, password: str, first_name: str, superuser: bool) -> User:
        user, created = User.objects.get_or_create(username=name)
        if created:
            user.first_name, user.email = first_name, f"{name}@corp.example"
            user.is_staff = user.is_superuser = superuser
            user.set_password(password)
            user.save()
        return user

    @staticmethod
    def _engine(item: dict) -> Engine:
        engine, _ = Engine.objects.get_or_create(
            database_uid=item["databaseUID"],
            defaults={
                "name": item["name"],
                "address": item["address"],
                "port": item["port"],
                "status": item["status"],
                "last_synced_at": timezone.now(),
            },
        )
        return engine

    @staticmethod
    def _device(item: dict, owner: User, engine: Engine | None) -> None:
        now = timezone.now()
        Device.objects.get_or_create(
            uid=item["uid"],
            defaults={
                "name": item["name"],
                "owner": owner,
                "engine": engine,
                "platform": device_platform(item.get("platform", "")),
                "last_seen_at": now - timedelta(minutes=item.get("last_seen_minutes_ago", 0)),
                "source": Device.Source.IMPORT,
                "confirmed_at": now,
            },
        )


def demo_api_client(*, owner: User) -> None:
    """The chat assistant's demo client, with the published demo token, unless it exists already."""
    if not ApiClient.objects.filter(name=DEMO_API_CLIENT).exists():
        client_create(name=DEMO_API_CLIENT, scopes=DEMO_API_SCOPES, owner=owner, secret=DEMO_API_TOKEN)


def missing_actions(document: dict) -> dict:
    """The demo catalog less the actions the database already has (matched by Nexthink UID)."""
    known = {str(uid) for uid in RemoteAction.objects.values_list("nexthink_uid", flat=True)}
    return {**document, "actions": [a for a in document["actions"] if a["nexthink_uid"] not in known]}
