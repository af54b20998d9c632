"""The SSO proxy's header signs in only from the proxy's own address, behind the TLS proxy."""

import logging

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

PROXY = "10.0.0.5"


@pytest.fixture
def header_sign_in(settings, db):
    settings.REMOTE_USER_HEADER = "X-Remote-User"
    settings.REMOTE_USER_PROXY_ADDRESSES = [PROXY]
    settings.BEHIND_TLS_PROXY = True


def get_catalog(client, address, **headers):
    return client.get(reverse("catalog"), REMOTE_ADDR=address, **headers)


def test_it_signs_in_the_user_the_proxy_names(client, header_sign_in):
    response = get_catalog(client, PROXY, HTTP_X_REMOTE_USER="dana")

    assert response.status_code == 200 and response.context["user"].username == "dana"
    assert not User.objects.get(username="dana").has_usable_password()


@pytest.mark.parametrize("address", ["10.0.0.6", "127.0.0.1"])
def test_it_ignores_and_logs_the_header_from_any_other_address(client, header_sign_in, caplog, address):
    with caplog.at_level(logging.WARNING, logger="actions.security"):
        response = get_catalog(client, address, HTTP_X_REMOTE_USER="admin")

    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert not User.objects.filter(username="admin").exists()
    [event] = [r for r in caplog.records if r.name == "actions.security"]
    assert (event.event, event.user, event.source_address) == ("proxy_header_ignored", "admin", address)


def test_it_ignores_the_header_when_not_behind_the_tls_proxy(client, header_sign_in, settings, caplog):
    settings.BEHIND_TLS_PROXY = False

    with caplog.at_level(logging.WARNING, logger="actions.security"):
        response = get_catalog(client, PROXY, HTTP_X_REMOTE_USER="dana")

    assert response.status_code == 302 and not User.objects.filter(username="dana").exists()
    assert any(r.event == "proxy_header_ignored" and "BEHIND_TLS_PROXY" in r.reason for r in caplog.records)


def test_a_header_session_ends_when_the_header_comes_from_elsewhere(client, header_sign_in):
    assert get_catalog(client, PROXY, HTTP_X_REMOTE_USER="dana").status_code == 200

    response = get_catalog(client, "10.0.0.6", HTTP_X_REMOTE_USER="dana")

    assert response.status_code == 302 and "_auth_user_id" not in client.session


def test_without_the_setting_the_header_means_nothing(client, db, settings, alice):
    settings.REMOTE_USER_HEADER = ""
    settings.BEHIND_TLS_PROXY = True

    response = get_catalog(client, PROXY, HTTP_X_REMOTE_USER="alice")

    assert response.status_code == 302 and "_auth_user_id" not in client.session
