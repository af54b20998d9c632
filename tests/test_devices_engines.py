"""`manage.py sync_engines` and its periodic task: the Engine rows follow the List Engines API."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from actions.devices.engines import ENGINE_NOT_LISTED, connected_engines, engines_sync
from actions.models import Engine
from actions.nexthink.classic.client import ActClient
from actions.tasks import sync_engines_task
from simulators import act_api as sim
from tests.factories import AMER, APAC, EMEA


def engines_by_uid():
    return {e.database_uid: e for e in Engine.objects.all()}


def test_it_creates_the_engines_the_list_engines_api_reports(use_simulator, db):
    out = StringIO()

    call_command("sync_engines", stdout=out)

    found = engines_by_uid()
    assert set(found) == {EMEA, AMER, APAC}
    assert (found[EMEA].name, found[EMEA].status, found[EMEA].address, found[EMEA].port) == (
        "engine-emea",
        "CONNECTED",
        "127.0.0.1",
        999,
    )
    assert all(e.last_synced_at is not None for e in found.values())
    assert found[EMEA].nxql_port == 1671
    assert "created: 3" in out.getvalue()


def test_a_second_sync_changes_nothing_but_the_sync_time(use_simulator, db):
    engines_sync()
    before = {uid: (e.name, e.address, e.port, e.status, e.nxql_port) for uid, e in engines_by_uid().items()}

    result = engines_sync()

    assert sorted(result.unchanged) == ["engine-amer", "engine-apac", "engine-emea"]
    assert result.created == result.updated == result.not_listed == []
    assert {uid: (e.name, e.address, e.port, e.status, e.nxql_port) for uid, e in engines_by_uid().items()} == before


def test_it_updates_an_engine_and_keeps_its_nxql_port(use_simulator, db):
    Engine.objects.create(database_uid=EMEA, name="old name", status="DISCONNECTED", nxql_port=8443)

    result = engines_sync()

    emea = Engine.objects.get(database_uid=EMEA)
    assert (emea.name, emea.status, emea.nxql_port) == ("engine-emea", "CONNECTED", 8443)
    assert result.updated == ["engine-emea"]


def test_an_engine_no_longer_listed_is_kept_and_no_longer_asked(use_simulator, db):
    gone = Engine.objects.create(database_uid="0" * 32, name="engine-retired", status="CONNECTED")

    result = engines_sync()

    gone.refresh_from_db()
    assert gone.status == ENGINE_NOT_LISTED
    assert result.not_listed == ["engine-retired"]
    assert gone not in connected_engines()
    assert Engine.objects.get(database_uid=EMEA) in connected_engines()


def test_it_reports_when_nexthink_cannot_be_asked(use_simulator, settings, db):
    settings.NEXTHINK_PASSWORD = "wrong"

    with pytest.raises(CommandError, match="Could not list the Engines"):
        call_command("sync_engines", stdout=StringIO())

    assert Engine.objects.count() == 0


def test_it_skips_entries_without_a_valid_database_uid(db):
    config = sim.load_config()
    config["engines"].append({"databaseUID": "not-hex", "name": "weird", "status": "CONNECTED"})
    server = sim.start_in_thread(config=config)
    try:
        result = engines_sync(client=ActClient(base_url=server.url, username="portal", password="portal-demo"))
    finally:
        server.shutdown()
        server.server_close()

    assert result.skipped == 1
    assert set(engines_by_uid()) == {EMEA, AMER, APAC}


def test_the_periodic_task_syncs_the_engines(use_simulator, db):
    summary = sync_engines_task()

    assert sorted(summary["created"]) == ["engine-amer", "engine-apac", "engine-emea"]
    assert Engine.objects.count() == 3


def test_an_empty_list_of_engines_changes_nothing_and_is_reported(db, caplog):
    Engine.objects.create(database_uid=EMEA, name="engine-emea", status="CONNECTED")
    server = sim.start_in_thread(config=sim.load_config() | {"engines": []})
    try:
        result = engines_sync(client=ActClient(base_url=server.url, username="portal", password="portal-demo"))
    finally:
        server.shutdown()
        server.server_close()

    assert result.empty_answer is True and result.as_dict()["empty_answer"] is True
    assert result.not_listed == []
    emea = Engine.objects.get(database_uid=EMEA)
    assert emea.status == "CONNECTED" and emea in connected_engines()
    assert "List Engines answered an empty list" in caplog.text


def test_the_command_says_when_nexthink_listed_no_engine(db, settings):
    Engine.objects.create(database_uid=EMEA, name="engine-emea", status="CONNECTED")
    server = sim.start_in_thread(config=sim.load_config() | {"engines": []})
    settings.NEXTHINK_PORTAL_URL, settings.NEXTHINK_USERNAME, settings.NEXTHINK_PASSWORD = (
        server.url,
        "portal",
        "portal-demo",
    )
    out, err = StringIO(), StringIO()
    try:
        call_command("sync_engines", stdout=out, stderr=err)
    finally:
        server.shutdown()
        server.server_close()

    assert "Nexthink listed no Engine at all; the Engines were left as they are." in err.getvalue()
    assert Engine.objects.get(database_uid=EMEA).status == "CONNECTED"
