"""Sessions end after an idle time and an absolute lifetime; a deactivated user loses access at the
next request; sign-out ends the portal session and, with a provider, the provider's too."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth.models import User
from django.urls import reverse

from actions.accounts.middleware import SEEN_AT_KEY, SIGNED_IN_AT_KEY
from tests import oidc
from tests.oidc import CLIENT_ID, approve_at_provider, start_sign_in

# The provider process, shared by the session, and the settings pointing at it.
oidc_provider_process, oidc_provider = oidc.oidc_provider_process, oidc.oidc_provider
OIDC_BACKEND = "actions.accounts.backends.PortalOIDCBackend"


@pytest.fixture
def limits(settings):
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 600
    settings.SESSION_MAX_AGE_SECONDS = 3600


def age_session(client, **seconds_ago):
    session = client.session
    now = int(time.time())
    for key, ago in seconds_ago.items():
        session[{"signed_in": SIGNED_IN_AT_KEY, "seen": SEEN_AT_KEY}[key]] = now - ago
    session.save()


def test_an_active_session_goes_on_and_records_the_activity(client, alice, limits):
    client.force_login(alice)
    age_session(client, signed_in=1000, seen=300)

    assert client.get(reverse("catalog")).status_code == 200
    assert int(time.time()) - client.session[SEEN_AT_KEY] < 5


def test_it_signs_out_after_the_idle_timeout(client, alice, limits):
    client.force_login(alice)
    age_session(client, seen=601)

    response = client.get(reverse("my_runs"))

    assert response.status_code == 302 and response["Location"] == reverse("login") + "?next=" + reverse("my_runs")
    assert "_auth_user_id" not in client.session
    assert "signed out after a while without activity" in client.get(response["Location"]).content.decode()


def test_it_signs_out_at_the_absolute_lifetime_however_active(client, alice, limits):
    client.force_login(alice)
    age_session(client, signed_in=3601, seen=1)

    response = client.get(reverse("catalog"))

    assert response.status_code == 302 and "_auth_user_id" not in client.session
    assert "reached its time limit" in client.get(response["Location"]).content.decode()


def test_a_polling_run_page_does_not_keep_the_session_alive(client, alice, limits):
    client.force_login(alice)
    age_session(client, seen=500)
    seen = client.session[SEEN_AT_KEY]

    client.get(reverse("run_status", args=["00000000-0000-0000-0000-000000000000"]))

    assert client.session[SEEN_AT_KEY] == seen


@pytest.mark.parametrize("backend", ["actions.accounts.backends.LocalLoginBackend", OIDC_BACKEND])
def test_a_deactivated_user_loses_access_at_the_next_request(client, alice, backend):
    client.force_login(alice, backend=backend)
    assert client.get(reverse("catalog")).status_code == 200

    User.objects.filter(pk=alice.pk).update(is_active=False)

    response = client.get(reverse("catalog"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_sign_out_without_a_provider_ends_the_session_and_shows_the_sign_in_page(client, alice):
    client.force_login(alice)

    response = client.post(reverse("logout"))

    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session


def test_sign_out_ends_the_provider_session_too(client, db, oidc_provider):
    oidc_provider.set_user("sub-dana", {"preferred_username": "dana"})
    client.get(approve_at_provider(start_sign_in(client)["url"], "sub-dana"))
    id_token = client.session["oidc_id_token"]

    response = client.post(reverse("logout"))

    assert "_auth_user_id" not in client.session
    end_session = urlsplit(response["Location"])
    assert f"{end_session.scheme}://{end_session.netloc}{end_session.path}" == oidc_provider.url + "/oauth2/end_session"
    query = {k: v[0] for k, v in parse_qs(end_session.query).items()}
    assert query == {
        "id_token_hint": id_token,
        "client_id": CLIENT_ID,
        "post_logout_redirect_uri": "http://testserver" + reverse("login"),
    }
    assert requests.get(response["Location"], timeout=5).status_code == 200  # the provider's own page


def test_sign_out_is_a_post(client, alice):
    client.force_login(alice)

    assert client.get(reverse("logout")).status_code == 405
    assert "_auth_user_id" in client.session


def test_a_session_past_its_expiry_date_is_not_read(client, alice):
    """The session store (actions/accounts/sessions.py) reads only a session that has not expired."""
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    client.force_login(alice)
    assert client.get(reverse("catalog")).status_code == 200
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )

    response = client.get(reverse("catalog"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
