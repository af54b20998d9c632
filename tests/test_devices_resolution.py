"""Device resolution: the directory, NXQL over HTTP against one simulator per Engine, the cache."""

import logging
import socket
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.utils import timezone

from actions.devices.resolution import nexthink_user_name, resolve_devices_for
from actions.models import Device, Engine
from actions.nexthink.classic.nxql import DEVICES_OF_USER_QUERY
from tests.factories import ALICE_LAPTOP, AMER, EMEA, make_device

BOB_LAPTOP = "4423e4c059b2c72ee9382e135888bef7"  # on engine-emea, CORP\bob


def sim_device(uid, name, user, *, engine=EMEA, last_seen="2026-11-20T10:00:00Z", **extra):
    return {
        "uid": uid,
        "name": name,
        "engine": engine,
        "platform": "windows",
        "last_logged_on_user": user,
        "last_seen": last_seen,
    } | extra


def uids(resolution):
    return [d.uid for d in resolution.devices]


def backdate_nxql_cache(user, seconds):
    Device.objects.filter(owner=user, source=Device.Source.NXQL).update(
        confirmed_at=timezone.now() - timedelta(seconds=seconds)
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Directory -----------------------------------------------------------------------------------


def test_it_finds_devices_assigned_in_the_directory(settings, alice, bob):
    settings.DEVICE_RESOLVERS = ["directory"]
    mine = make_device(alice, source=Device.Source.MANUAL)
    imported = make_device(alice, source=Device.Source.IMPORT)
    make_device(bob)
    make_device(alice, source=Device.Source.NXQL, confirmed_at=timezone.now())  # not a directory device

    resolution = resolve_devices_for(alice)

    assert set(uids(resolution)) == {mine.uid, imported.uid}
    assert resolution.unreachable_engines == []


def test_an_anonymous_user_has_no_devices(db):
    assert resolve_devices_for(AnonymousUser()).devices == []


# --- NXQL over HTTP ---------------------------------------------------------------------------------


def test_it_finds_the_users_device_with_nxql_and_caches_it(nxql_engines, alice):
    resolution = resolve_devices_for(alice)

    assert uids(resolution) == [ALICE_LAPTOP]
    assert resolution.unreachable_engines == []
    device = Device.objects.get(uid=ALICE_LAPTOP)
    assert device.owner == alice
    assert device.source == Device.Source.NXQL
    assert device.engine == nxql_engines.emea
    assert device.name == "LAPTOP-ALICE" and device.platform == "windows"
    assert device.last_seen_at is not None and device.confirmed_at is not None
    for engine in (nxql_engines.emea, nxql_engines.amer):
        [query] = nxql_engines.queries(engine)
        assert query["query"] == DEVICES_OF_USER_QUERY and query["params"] == {"p1": "CORP\\alice"}
        assert query["platforms"] == ["windows"] and query["format"] == "json" and query["user"] == "portal"


def test_it_lists_the_users_devices_most_recently_seen_first(nxql_engines, alice, bob):
    now = timezone.now()
    nxql_engines.set_devices(
        nxql_engines.emea,
        [
            sim_device("a1" * 16, "LAPTOP-NEW", "CORP\\alice", last_seen=(now - timedelta(minutes=10)).isoformat()),
            sim_device(BOB_LAPTOP, "LAPTOP-BOB", "CORP\\bob"),
        ],
    )
    nxql_engines.set_devices(
        nxql_engines.amer,
        [
            sim_device(
                "a2" * 16, "DESKTOP-OLD", "CORP\\alice", engine=AMER, last_seen=(now - timedelta(days=3)).isoformat()
            )
        ],
    )
    directory = make_device(alice, name="TABLET", last_seen_at=now - timedelta(hours=1))
    never_seen = make_device(alice, name="SPARE", last_seen_at=None)

    resolution = resolve_devices_for(alice)

    assert uids(resolution) == ["a1" * 16, directory.uid, "a2" * 16, never_seen.uid]
    assert Device.objects.get(uid="a2" * 16).engine == nxql_engines.amer


def test_it_reuses_the_nxql_answer_within_the_ttl(nxql_engines, alice):
    resolve_devices_for(alice)
    assert nxql_engines.query_count() == 2  # one per Engine

    again = resolve_devices_for(alice)

    assert uids(again) == [ALICE_LAPTOP]
    assert nxql_engines.query_count() == 2


def test_a_user_nxql_finds_nothing_for_is_not_asked_about_on_every_page(nxql_engines, bob, settings):
    from django.core.cache import cache

    settings.NXQL_USER_NAME_TEMPLATE = "CORP\\nobody-{username}"  # no device has this user
    settings.NXQL_RECHECK_SECONDS = 60
    cache.clear()
    try:
        first = [uids(resolve_devices_for(bob)) for _ in range(3)]
        asked = nxql_engines.query_count()
        cache.clear()  # the recheck period is over
        resolve_devices_for(bob)
    finally:
        cache.clear()

    assert first == [[], [], []]
    assert asked == 2  # once per Engine, not once per page view
    assert nxql_engines.query_count() == 4


def test_it_asks_again_once_the_ttl_has_passed(nxql_engines, alice, settings):
    resolve_devices_for(alice)
    backdate_nxql_cache(alice, settings.NXQL_CACHE_TTL_SECONDS + 1)

    again = resolve_devices_for(alice)

    assert uids(again) == [ALICE_LAPTOP]
    assert nxql_engines.query_count() == 4
    assert Device.objects.get(uid=ALICE_LAPTOP).confirmed_at > timezone.now() - timedelta(minutes=1)


def test_a_change_of_owner_stops_the_cached_device_resolving_for_its_previous_owner(nxql_engines, alice, bob):
    nxql_engines.set_devices(nxql_engines.amer, [sim_device("a2" * 16, "DESKTOP-ALICE", "CORP\\alice", engine=AMER)])
    assert set(uids(resolve_devices_for(alice))) == {ALICE_LAPTOP, "a2" * 16}
    # Bob now signs in on what was Alice's laptop; his fresh answer moves it.
    nxql_engines.set_devices(nxql_engines.emea, [sim_device(ALICE_LAPTOP, "LAPTOP-ALICE", "CORP\\bob")])

    assert uids(resolve_devices_for(bob)) == [ALICE_LAPTOP]
    queries_before = nxql_engines.query_count()
    alices = resolve_devices_for(alice)

    assert uids(alices) == ["a2" * 16]  # her cache is still fresh, and the laptop is gone from it
    assert nxql_engines.query_count() == queries_before
    assert Device.objects.get(uid=ALICE_LAPTOP).owner == bob


def test_a_device_an_engine_no_longer_lists_is_released(nxql_engines, alice, settings):
    resolve_devices_for(alice)
    nxql_engines.set_devices(nxql_engines.emea, [sim_device(ALICE_LAPTOP, "LAPTOP-ALICE", "CORP\\carol")])
    backdate_nxql_cache(alice, settings.NXQL_CACHE_TTL_SECONDS + 1)

    resolution = resolve_devices_for(alice)

    assert resolution.devices == []
    assert Device.objects.get(uid=ALICE_LAPTOP).owner is None


def test_an_engine_that_does_not_answer_does_not_stop_the_others(nxql_engines, alice, caplog):
    Engine.objects.create(
        database_uid="ce80dddfdb7a5c2346c4ac184b7d6a54",
        name="engine-apac",
        address="127.0.0.1",
        nxql_port=closed_port(),
        status="CONNECTED",
    )
    with caplog.at_level(logging.WARNING, logger="actions.devices.resolution"):
        resolution = resolve_devices_for(alice)

    assert uids(resolution) == [ALICE_LAPTOP]
    assert resolution.unreachable_engines == ["engine-apac"]
    assert "engine-apac could not be asked" in caplog.text


def test_a_device_of_an_engine_that_cannot_be_asked_is_offered_only_within_the_ttl(nxql_engines, alice, settings):
    resolve_devices_for(alice)
    backdate_nxql_cache(alice, settings.NXQL_CACHE_TTL_SECONDS - 60)
    Engine.objects.filter(pk=nxql_engines.emea.pk).update(nxql_port=closed_port())
    nxql_engines.set_devices(nxql_engines.amer, [sim_device("a2" * 16, "DESKTOP-ALICE", "CORP\\alice", engine=AMER)])
    make_device(  # an old answer from amer, so that the cache is asked again
        alice, engine=nxql_engines.amer, source=Device.Source.NXQL, confirmed_at=timezone.now() - timedelta(days=1)
    )

    still_fresh = resolve_devices_for(alice)
    settings.NXQL_CACHE_TTL_SECONDS = 30  # now the laptop's answer is too old
    too_old = resolve_devices_for(alice)

    assert set(uids(still_fresh)) == {ALICE_LAPTOP, "a2" * 16}
    assert uids(too_old) == ["a2" * 16]
    assert still_fresh.unreachable_engines == too_old.unreachable_engines == ["engine-emea"]
    assert Device.objects.get(uid=ALICE_LAPTOP).owner == alice  # kept, not offered, until the Engine answers


def test_answers_of_unexpected_shapes_are_skipped_and_logged(nxql_engines, alice, caplog):
    nxql_engines.set_answer(nxql_engines.emea, {"rows": [{"device_uid": ALICE_LAPTOP}]})
    nxql_engines.set_devices(
        nxql_engines.amer,
        [
            sim_device(None, "NO-UID", "CORP\\alice", engine=AMER),
            sim_device("not hex", "BAD-UID", "CORP\\alice", engine=AMER),
            sim_device("a2" * 16, "DESKTOP-ALICE", "CORP\\alice", engine=AMER),
        ],
    )
    with caplog.at_level(logging.WARNING):
        resolution = resolve_devices_for(alice)

    assert uids(resolution) == ["a2" * 16]
    assert resolution.unreachable_engines == ["engine-emea"]
    assert not Device.objects.filter(name__in=["NO-UID", "BAD-UID"]).exists()
    assert "expected a list of records" in caplog.text
    assert caplog.text.count("no valid device_uid") == 2


def test_an_engine_error_page_counts_as_not_answering(nxql_engines, alice):
    nxql_engines.set_answer(nxql_engines.amer, "<html>502 Bad Gateway</html>", status=502)

    resolution = resolve_devices_for(alice)

    assert uids(resolution) == [ALICE_LAPTOP]
    assert resolution.unreachable_engines == ["engine-amer"]


def test_engines_that_are_not_connected_are_not_asked(nxql_engines, alice):
    Engine.objects.filter(pk=nxql_engines.amer.pk).update(status="NOT_LISTED")

    resolve_devices_for(alice)

    assert len(nxql_engines.queries(nxql_engines.emea)) == 1
    assert nxql_engines.queries(nxql_engines.amer) == []


# --- Directory and NXQL together --------------------------------------------------------------------


def test_nxql_leaves_a_directory_assignment_alone_when_the_directory_comes_first(nxql_engines, alice, bob):
    make_device(bob, uid=ALICE_LAPTOP, name="BOBS-BY-IT", source=Device.Source.MANUAL)

    resolution = resolve_devices_for(alice)

    assert resolution.devices == []
    device = Device.objects.get(uid=ALICE_LAPTOP)
    assert (device.owner, device.source, device.name) == (bob, Device.Source.MANUAL, "BOBS-BY-IT")


def test_nxql_overrides_the_directory_when_it_comes_first(nxql_engines, alice, bob, settings):
    settings.DEVICE_RESOLVERS = ["nxql", "directory"]
    make_device(bob, uid=ALICE_LAPTOP, name="BOBS-BY-IT", source=Device.Source.MANUAL)

    assert uids(resolve_devices_for(alice)) == [ALICE_LAPTOP]
    assert uids(resolve_devices_for(bob)) == [BOB_LAPTOP]
    assert Device.objects.get(uid=ALICE_LAPTOP).source == Device.Source.NXQL


def test_without_the_nxql_resolver_no_engine_is_asked(nxql_engines, alice, settings):
    settings.DEVICE_RESOLVERS = ["directory"]
    mine = make_device(alice)

    assert uids(resolve_devices_for(alice)) == [mine.uid]
    assert nxql_engines.query_count() == 0


# --- The Nexthink user name --------------------------------------------------------------------------


def test_it_maps_the_django_user_to_the_nexthink_user_name(settings, db):
    user = User(username="bob", email="Bob.Smith@corp.example", first_name="Bob")
    for template, expected in (
        ("CORP\\{username}", "CORP\\bob"),
        ("{username}@corp.example", "bob@corp.example"),
        ("{email}", "Bob.Smith@corp.example"),
        ("CORP\\{email_local}", "CORP\\Bob.Smith"),
        ("{first_name}", "Bob"),
    ):
        settings.NXQL_USER_NAME_TEMPLATE = template
        assert nexthink_user_name(user) == expected


def test_a_user_without_the_mapped_attribute_is_not_looked_up(nxql_engines, settings):
    settings.NXQL_USER_NAME_TEMPLATE = "{email}"
    nobody = User.objects.create_user("nomail", "", "x")

    assert nexthink_user_name(nobody) is None
    assert resolve_devices_for(nobody).devices == []
    assert nxql_engines.query_count() == 0


def test_the_user_name_mapping_never_reads_the_password(settings):
    settings.NXQL_USER_NAME_TEMPLATE = "{password}"

    with pytest.raises(ValueError):
        nexthink_user_name(User(username="bob", password="hash"))


def test_an_upn_mapping_finds_the_upn_device(nxql_engines, bob, settings):
    settings.NXQL_USER_NAME_TEMPLATE = "{username}@corp.example"

    resolution = resolve_devices_for(bob)

    assert [d.name for d in resolution.devices] == ["DESKTOP-BOB"]
    assert resolution.devices[0].engine == nxql_engines.amer


def test_a_user_name_with_quotes_and_backslashes_finds_exactly_their_devices(nxql_engines, alice, settings):
    settings.NXQL_USER_NAME_TEMPLATE = "{first_name}"
    tricky = 'CORP\\o"brien \\"x\\'
    alice.first_name = tricky
    alice.save()
    nxql_engines.set_devices(
        nxql_engines.emea,
        [
            sim_device(ALICE_LAPTOP, "LAPTOP-TRICKY", tricky),
            sim_device(BOB_LAPTOP, "LAPTOP-ESCAPED", tricky.replace("\\", "\\\\").replace('"', '\\"')),
            sim_device("b1" * 16, "LAPTOP-PREFIX", "CORP\\o"),
            sim_device("b2" * 16, "LAPTOP-LONGER", tricky + "\\"),
        ],
    )

    resolution = resolve_devices_for(alice)

    assert uids(resolution) == [ALICE_LAPTOP]
    assert resolution.unreachable_engines == []
    assert list(Device.objects.values_list("uid", flat=True)) == [ALICE_LAPTOP]
    [query] = nxql_engines.queries(nxql_engines.emea)
    assert query["query"] == DEVICES_OF_USER_QUERY and query["params"] == {"p1": tricky}
