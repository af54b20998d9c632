"""Bad bytes and headers: what a hostile or careless client sends never reaches the device, the log or a cache."""

import functools
import logging
import re
from pathlib import Path

import pytest
from django.urls import reverse

from actions.models import ActionParameter, Run
from tests.factories import make_action, make_device, make_parameter, post_run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def printer_action(db):
    """An action with a required single-line Name and a multi-line Notes."""
    action = make_action(name="Rename printer", slug="rename-printer")
    make_parameter(action, name="Name", label="Printer name", kind=ActionParameter.Kind.TEXT, required=True)
    make_parameter(action, name="Notes", label="Notes", kind=ActionParameter.Kind.TEXTAREA)
    return action


post = functools.partial(post_run, idempotency_key="k" * 24, param_Notes="")  # the `laptop` device, Notes empty


@pytest.mark.parametrize(
    "bad", ["a\x1bb", "bell\x07", "back\x08space", "line\u2028sep", "para\u2029sep", "c1\x85c1", "del\x7f", "tab\there"]
)
def test_single_line_text_refuses_every_control_character(client, alice, printer_action, laptop, bad):
    client.force_login(alice)

    response = post(client, printer_action, param_Name=bad)

    assert response.status_code == 200 and Run.objects.count() == 0
    assert "\x1b" not in response.content.decode()


def test_multi_line_text_keeps_line_breaks_and_tabs_only(client, alice, printer_action, laptop):
    client.force_login(alice)

    assert post(client, printer_action, param_Name="HP", param_Notes="one\x1b").status_code == 200
    response = post(client, printer_action, param_Name="HP", param_Notes="one\r\n\ttwo")

    assert response.status_code == 302
    assert Run.objects.get().params["Notes"] == "one\n\ttwo"


def test_a_nul_in_the_catalog_search_is_a_clean_400(client, alice):
    client.force_login(alice)

    response = client.get(reverse("catalog"), {"q": "teams\x00"})

    assert response.status_code == 400


@pytest.mark.parametrize("device", ["d" * 33, "not-a-device-uid", "../../etc/passwd"])
def test_a_malformed_device_is_a_security_event(client, alice, printer_action, laptop, caplog, device):
    client.force_login(alice)

    with caplog.at_level(logging.WARNING, logger="actions.security"):
        post(client, printer_action, param_Name="HP", device=device)

    assert Run.objects.count() == 0
    assert any(r.getMessage().startswith("device_uid_invalid user=alice") for r in caplog.records)


def test_another_users_device_in_upper_case_is_a_security_event(client, alice, bob, printer_action, laptop, caplog):
    bobs = make_device(bob, uid="4423e4c059b2c72ee9382e135888bef7")
    client.force_login(alice)

    with caplog.at_level(logging.WARNING, logger="actions.security"):
        response = post(client, printer_action, param_Name="HP", device=bobs.uid.upper())

    assert response.status_code == 404 and Run.objects.count() == 0
    assert any(r.getMessage().startswith(f"device_not_owned user=alice device={bobs.uid}") for r in caplog.records)


def test_signed_in_pages_are_never_stored(client, alice, printer_action):
    client.force_login(alice)

    for url in (reverse("catalog"), printer_action.get_absolute_url(), reverse("my_runs"), reverse("preferences")):
        assert "no-store" in client.get(url)["Cache-Control"], url


def test_static_files_keep_their_own_caching(client, alice):
    client.force_login(alice)

    response = client.get("/static/css/portal.css")

    assert response.status_code == 200 and "no-store" not in response.get("Cache-Control", "")


def test_the_documented_gunicorn_command_keeps_its_control_socket_in_the_var_folder():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"^gunicorn portal\.wsgi .*?(?<!\\)$", readme, re.M | re.S).group(0)

    assert '--control-socket "${PORTAL_VAR_DIR:-var}/gunicorn.ctl"' in command
