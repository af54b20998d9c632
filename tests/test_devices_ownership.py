"""Ownership on the server: device_for_user at submit time, the run's re-check at dispatch time."""

import logging
import socket
from datetime import datetime, timedelta

import pytest
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from actions.devices.ownership import device_for_user
from actions.devices.resolution import resolve_devices_for
from actions.models import Device, Engine, Run
from actions.runs.dispatch import still_allowed
from actions.runs.selectors import visible_and_owned
from actions.runs.submit import run_submit
from tests.factories import ALICE_LAPTOP, make_action, make_device


def security_events(caplog):
    return [r for r in caplog.records if r.name == "actions.security"]


@pytest.fixture
def security_log(caplog):
    caplog.set_level(logging.INFO, logger="actions.security")
    return caplog


def test_it_gives_the_users_own_device(alice, security_log):
    mine = make_device(alice)

    assert device_for_user(alice, mine.uid, source_address="10.0.0.5") == mine
    assert security_events(security_log) == []


def test_another_users_device_is_a_404_and_a_security_event(alice, bob, security_log):
    bobs = make_device(bob)

    with pytest.raises(Http404):
        device_for_user(alice, bobs.uid, source_address="10.0.0.5")

    [event] = security_events(security_log)
    assert event.levelno == logging.WARNING
    assert event.event == "device_not_owned"
    assert (event.user, event.device, event.source_address) == ("alice", bobs.uid, "10.0.0.5")
    at = datetime.fromisoformat(event.at)
    assert at.tzinfo is not None and at <= timezone.now()
    assert f"device_not_owned user=alice device={bobs.uid}" in event.getMessage()


def test_an_unknown_device_is_a_404_and_a_security_event(alice, security_log):
    with pytest.raises(Http404):
        device_for_user(alice, "f" * 32)

    [event] = security_events(security_log)
    assert (event.event, event.device, event.source_address) == ("device_not_owned", "f" * 32, "-")


@pytest.mark.parametrize(
    "uid", ["", "f" * 31, "f" * 33, "g" * 32, "f" * 31 + "\n", "' OR 1=1 --", "{da2add90-9a14-4e82-3545-3f88dc45172f}"]
)
def test_a_malformed_uid_is_refused_before_any_lookup(alice, uid, security_log, django_assert_num_queries):
    with django_assert_num_queries(0), pytest.raises(Http404):
        device_for_user(alice, uid, source_address="10.0.0.5")

    [event] = security_events(security_log)
    assert event.event == "device_uid_invalid"
    assert "\n" not in event.getMessage()


def test_an_uppercase_uid_is_the_same_device(alice):
    mine = make_device(alice, uid="ab" * 16)

    assert device_for_user(alice, "AB" * 16) == mine


def test_a_device_of_a_resolver_that_is_switched_off_is_not_accepted(alice, settings):
    settings.DEVICE_RESOLVERS = ["nxql"]
    mine = make_device(alice, source=Device.Source.MANUAL)

    with pytest.raises(Http404):
        device_for_user(alice, mine.uid)


def test_at_dispatch_it_tells_whether_the_device_is_still_the_users(alice, bob, security_log):
    device = make_device(alice)
    run = run_submit(user=alice, action=make_action(), device=device, params={})

    assert visible_and_owned(run.pk)[1] is True
    assert still_allowed(run) is None
    assert security_events(security_log) == []

    Device.objects.filter(pk=device.pk).update(owner=bob)

    assert visible_and_owned(run.pk)[1] is False  # the row is read again
    assert still_allowed(run)[0] == "DEVICE_NOT_OWNED"
    [event] = security_events(security_log)
    assert (event.event, event.stage, event.user, event.device) == ("device_not_owned", "dispatch", "alice", device.uid)


# --- NXQL devices: confirmed again when their answer is older than the TTL ---------------------


def test_a_stale_nxql_device_is_confirmed_by_asking_again(nxql_engines, alice, settings):
    resolve_devices_for(alice)
    Device.objects.filter(uid=ALICE_LAPTOP).update(confirmed_at=timezone.now() - timedelta(days=1))

    device = device_for_user(alice, ALICE_LAPTOP)

    assert device.uid == ALICE_LAPTOP
    assert device.confirmed_at > timezone.now() - timedelta(minutes=1)
    assert nxql_engines.query_count() == 4


def test_a_stale_nxql_device_that_moved_is_a_404_and_a_security_event(nxql_engines, alice, bob, security_log):
    resolve_devices_for(alice)
    Device.objects.filter(uid=ALICE_LAPTOP).update(confirmed_at=timezone.now() - timedelta(days=1))
    nxql_engines.set_devices(
        nxql_engines.emea,
        [
            {
                "uid": ALICE_LAPTOP,
                "name": "LAPTOP-ALICE",
                "engine": nxql_engines.emea.database_uid,
                "platform": "windows",
                "last_logged_on_user": "CORP\\carol",
            }
        ],
    )

    with pytest.raises(Http404):
        device_for_user(alice, ALICE_LAPTOP, source_address="10.0.0.5")

    assert Device.objects.get(uid=ALICE_LAPTOP).owner is None
    [event] = security_events(security_log)
    assert event.event == "device_not_owned"


def test_a_stale_nxql_device_that_cannot_be_confirmed_is_refused(nxql_engines, alice, security_log):
    resolve_devices_for(alice)
    Device.objects.filter(uid=ALICE_LAPTOP).update(confirmed_at=timezone.now() - timedelta(days=1))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    Engine.objects.filter(pk=nxql_engines.emea.pk).update(nxql_port=closed)

    with pytest.raises(Http404):
        device_for_user(alice, ALICE_LAPTOP)

    assert Device.objects.get(uid=ALICE_LAPTOP).owner == alice
    [event] = security_events(security_log)
    assert (event.event, event.levelno) == ("device_unconfirmed", logging.INFO)


# --- The action page: a tampered device UID in the POST ---------------------------------------------


def test_a_tampered_device_uid_on_the_action_page_is_a_404_and_nothing_is_enqueued(
    client, alice, bob, settings, broker_queue, security_log, django_capture_on_commit_callbacks
):
    settings.DEVICE_RESOLVERS = ["directory"]
    action = make_action(slug="clear-cache")
    make_device(alice, name="LAPTOP-ALICE")
    bobs = make_device(bob, name="LAPTOP-BOB")
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("action_detail", args=[action.slug]),
            {"device": bobs.uid, "idempotency_key": "k" * 24},
            REMOTE_ADDR="10.1.2.3",
        )

    assert response.status_code == 404
    assert Run.objects.count() == 0
    assert broker_queue() == []
    [event] = security_events(security_log)
    assert (event.event, event.user, event.device, event.source_address) == (
        "device_not_owned",
        "alice",
        bobs.uid,
        "10.1.2.3",
    )


def test_the_users_own_device_on_the_action_page_is_queued(
    client, alice, settings, broker_queue, security_log, django_capture_on_commit_callbacks
):
    """The counterpart of the tampering test: the same POST with her own device goes through."""
    settings.DEVICE_RESOLVERS = ["directory"]
    action = make_action(slug="clear-cache")
    mine = make_device(alice, name="LAPTOP-ALICE")
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("action_detail", args=[action.slug]), {"device": mine.uid, "idempotency_key": "k" * 24}
        )

    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert (run.user, run.device) == (alice, mine)
    assert broker_queue() == [str(run.pk)]
    assert security_events(security_log) == []
