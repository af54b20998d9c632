"""A hanging or failing Engine must not hold the action page: one budget per page, and a rest after a failure."""

import pytest
from django.urls import reverse

from actions.devices.resolution import resolve_devices_for
from tests.factories import make_action, make_device

ALICE_DEVICE = {
    "uid": "da2add909a144e8235453f88dc45172f",
    "name": "LAPTOP-ALICE",
    "engine": "86acc8511251ec444d3a75bac33a23c7",
    "platform": "windows",
    "last_logged_on_user": "CORP\\alice",
    "last_seen": "2026-11-20T10:00:00Z",
}


@pytest.fixture
def engines(nxql_engines, settings):
    settings.NXQL_PAGE_BUDGET_SECONDS = 1
    settings.NXQL_ENGINE_REST_SECONDS = 60
    settings.NXQL_TIMEOUT_SECONDS = 5
    nxql_engines.set_devices(nxql_engines.emea, [ALICE_DEVICE])
    nxql_engines.set_devices(nxql_engines.amer, [])
    yield nxql_engines
    from django.core.cache import cache

    cache.clear()
    nxql_engines.hang(nxql_engines.amer, 0)


def test_a_hanging_engine_is_named_and_the_others_devices_are_shown(engines, alice):
    engines.hang(engines.amer, 4)

    resolution = resolve_devices_for(alice)

    assert [d.name for d in resolution.devices] == ["LAPTOP-ALICE"]
    assert resolution.unreachable_engines == ["engine-amer"]


def test_an_engine_that_failed_rests_instead_of_being_asked_on_every_page(engines, alice):
    engines.set_devices(engines.emea, [])  # nothing cached for alice: every page asks again
    engines.hang(engines.amer, 4)
    resolve_devices_for(alice)
    asked = len(engines.queries(engines.amer))

    second = resolve_devices_for(alice)

    assert len(engines.queries(engines.amer)) == asked == 1  # not asked again while it rests
    assert second.unreachable_engines == ["engine-amer"]


def test_an_engine_answering_an_error_rests_too(engines, alice):
    engines.set_devices(engines.emea, [])
    engines.set_answer(engines.amer, {"error": "down"}, status=500)
    resolve_devices_for(alice)

    resolve_devices_for(alice)

    assert len(engines.queries(engines.amer)) == 1


def test_the_action_page_does_not_wait_for_a_hanging_engine(engines, client, alice):
    engines.hang(engines.amer, 4)
    action = make_action(slug="flush")
    client.force_login(alice)

    response = client.get(reverse("action_detail", args=[action.slug]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "<strong>engine-amer</strong>" in page and "LAPTOP-ALICE" in page


def test_a_device_from_the_directory_is_offered_while_every_engine_hangs(engines, alice):
    engines.hang(engines.emea, 4)
    engines.hang(engines.amer, 4)
    make_device(alice, name="DESKTOP-ALICE")

    resolution = resolve_devices_for(alice)

    assert [d.name for d in resolution.devices] == ["DESKTOP-ALICE"]
    assert sorted(resolution.unreachable_engines) == ["engine-amer", "engine-emea"]


def test_the_page_returns_before_a_hanging_engine_answers(engines, alice):
    engines.hang(engines.emea, 3)
    engines.hang(engines.amer, 3)

    resolve_devices_for(alice)

    # Both are still hanging when the page has its answer: the budget, not the Engines, ended the wait.
    assert [query.get("answered_at") for query in engines.queries(engines.emea) + engines.queries(engines.amer)] == [
        None,
        None,
    ]
    engines.hang(engines.emea, 0)
