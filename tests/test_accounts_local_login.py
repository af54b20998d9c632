"""Password sign-in: only while LOCAL_LOGIN is on, and locked after a handful of failures per user
name and per address, with a message that does not tell whether the user exists."""

import logging
import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.urls import reverse
from django.utils import timezone

from tests.oidc import FORGED_ISSUER, Forger, configure, start_sign_in

LOCKED = "Password sign-in is paused"


@pytest.fixture(autouse=True)
def throttle(settings):
    settings.LOCAL_LOGIN = True
    settings.AXES_FAILURE_LIMIT = settings.LOGIN_FAILURE_LIMIT = 3


def attempt(client, username, password, address="10.1.1.1"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_it_signs_in_with_a_password(client, alice):
    response = attempt(client, "alice", "alice-pass")

    assert response.status_code == 302 and client.session["_auth_user_id"] == str(alice.pk)


def test_it_locks_a_user_name_after_repeated_failures_even_with_the_right_password(client, alice, caplog):
    for address in ("10.1.1.1", "10.1.1.2"):
        response = attempt(client, "alice", "wrong", address)
        assert (
            response.status_code == 200 and "Please enter a correct username and password" in response.content.decode()
        )
    third = attempt(client, "alice", "wrong", "10.1.1.3")  # the limit (3): this failure locks

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="actions.security"):
        response = attempt(client, "alice", "alice-pass", "10.1.1.4")

    assert third.status_code == response.status_code == 429 and LOCKED in response.content.decode()
    assert "_auth_user_id" not in client.session
    [event] = [r for r in caplog.records if r.name == "actions.security"]
    assert (event.event, event.user, event.source_address) == ("local_login_locked_out", "alice", "10.1.1.4")


def test_it_locks_an_address_that_tries_many_user_names(client, alice, bob):
    for name in ("carol", "dave", "erin"):
        attempt(client, name, "guess", "10.9.9.9")

    response = attempt(client, "bob", "bob-pass", "10.9.9.9")

    assert response.status_code == 429 and "_auth_user_id" not in client.session
    assert attempt(client, "bob", "bob-pass", "10.8.8.8").status_code == 302  # another address is not locked


def test_the_lock_out_page_is_the_same_for_a_user_that_does_not_exist(client, alice):
    for _ in range(3):
        attempt(client, "alice", "wrong")
        attempt(client, "nobody", "wrong", "10.2.2.2")

    known = attempt(client, "alice", "wrong", "10.3.3.3")
    unknown = attempt(client, "nobody", "wrong", "10.3.3.4")

    assert known.status_code == unknown.status_code == 429
    assert page_without_tokens(known).replace("alice", "X") == page_without_tokens(unknown).replace("nobody", "X")


def page_without_tokens(response) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())


def test_failures_older_than_the_window_no_longer_count(client, alice, settings):
    for _ in range(3):
        attempt(client, "alice", "wrong")
    assert attempt(client, "alice", "alice-pass").status_code == 429

    # The lock-out time passes after the last failure: the failures no longer count.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS + 1))

    assert attempt(client, "alice", "alice-pass").status_code == 302


def test_an_address_locked_for_passwords_still_signs_in_with_the_company_account(client, alice, settings, monkeypatch):
    configure(settings, FORGED_ISSUER)
    forger = Forger(monkeypatch)
    for name in ("carol", "dave", "erin"):
        attempt(client, name, "guess", "127.0.0.1")
    assert attempt(client, "alice", "alice-pass", "127.0.0.1").status_code == 429
    request = start_sign_in(client)
    forger.id_token = forger.sign(forger.claims(request["nonce"]))

    response = client.get(reverse("oidc_authentication_callback") + f"?code=c&state={request['state']}")

    assert response.status_code == 302 and client.session["_auth_user_id"]
    assert AccessAttempt.objects.filter(username="dana").count() == 0


def test_password_sign_in_is_refused_while_local_login_is_off(client, alice, settings, caplog):
    settings.LOCAL_LOGIN = False
    settings.OIDC_ENABLED = True

    page = client.get(reverse("login")).content.decode()
    with caplog.at_level(logging.WARNING, logger="actions.security"):
        response = attempt(client, "alice", "alice-pass")

    assert "Sign in with your company account" in page and 'name="password"' not in page
    assert response.status_code == 403 and "_auth_user_id" not in client.session
    assert "turned off" in response.content.decode()
    assert any(r.event == "local_login_disabled" for r in caplog.records)


def test_the_login_page_offers_both_ways_in_the_demo_with_a_provider(client, db, settings):
    settings.OIDC_ENABLED = True

    page = client.get(reverse("login")).content.decode()

    assert "Sign in with your company account" in page and 'name="password"' in page


def test_without_a_provider_the_login_page_has_only_the_password_form(client, db):
    page = client.get(reverse("login")).content.decode()

    assert "company account</a>" not in page and 'name="password"' in page
