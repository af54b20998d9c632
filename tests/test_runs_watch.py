"""The run page's poll of a run that has not changed: 304 for the owner's session only, at no query."""

import time

import pytest
from django.urls import reverse

from actions.runs import lifecycle, watch
from actions.runs.submit import run_submit
from tests.factories import make_device, make_sim_action


@pytest.fixture
def alice_run(alice):
    return run_submit(user=alice, action=make_sim_action(), device=make_device(alice, name="LAPTOP-ALICE"), params={})


def look(client, run, tag=""):
    headers = {"HTTP_IF_NONE_MATCH": tag} if tag else {}
    return client.get(reverse("run_status", args=[run.pk]), **headers)


def test_an_unchanged_run_is_answered_304_without_a_query(client, alice, alice_run, django_assert_num_queries):
    client.force_login(alice)
    first = look(client, alice_run)
    assert first.status_code == 200 and first.json()["status"] == "queued"

    with django_assert_num_queries(0):
        again = look(client, alice_run, first["ETag"])

    assert again.status_code == 304
    assert "no-store" in again["Cache-Control"]


def test_another_session_is_never_told_unchanged(client, alice, bob, alice_run):
    client.force_login(alice)
    tag = look(client, alice_run)["ETag"]
    client.logout()
    client.force_login(bob)

    assert look(client, alice_run, tag).status_code == 404


def test_a_transition_makes_the_next_look_whole(client, alice, alice_run, django_capture_on_commit_callbacks):
    client.force_login(alice)
    tag = look(client, alice_run)["ETag"]

    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.claim(alice_run.pk)
    after = look(client, alice_run, tag)

    assert after.status_code == 200 and after.json()["status"] == "sending"
    assert after["ETag"] != tag


def test_a_final_run_carries_no_tag(client, alice, alice_run):
    lifecycle.claim(alice_run.pk)
    lifecycle.transition(alice_run.pk, "sent", leaving=("sending",))
    client.force_login(alice)

    assert not look(client, alice_run).has_header("ETag")


def test_a_tag_is_not_honoured_past_the_moment_time_alone_changes_the_answer(client, alice, alice_run):
    client.force_login(alice)
    look(client, alice_run)  # the run's version made
    session = client.cookies["sessionid"].value
    past = watch.etag(alice_run.pk, session, watch.version(alice_run.pk), fresh_until=time.time() - 1)
    fresh = watch.etag(alice_run.pk, session, watch.version(alice_run.pk), fresh_until=time.time() + 60)

    assert look(client, alice_run, past).status_code == 200
    assert look(client, alice_run, fresh).status_code == 304
