"""Company sign-in through OpenID Connect: a real provider process for the flow, forged tokens at the
seam for the refusals. Each refusal shows one clear page and creates nothing."""

import base64
import json
import logging
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import Group, User
from django.urls import reverse

from actions.accounts.groups import ANY_DEVICE_GROUP_NAME, CURATORS_GROUP_NAME
from actions.integrations import oidc_provider as provider
from actions.models import CompanyIdentity
from tests import oidc
from tests.factories import make_device
from tests.oidc import FORGED_ISSUER, Forger, approve_at_provider, configure, start_sign_in

# The provider process, shared by the session, and the settings pointing at it.
oidc_provider_process, oidc_provider = oidc.oidc_provider_process, oidc.oidc_provider
REFUSED = "We could not sign you in"


@pytest.fixture
def forger(settings, monkeypatch):
    configure(settings, FORGED_ISSUER)
    return Forger(monkeypatch)


def refused(response, words: str = "could not verify"):
    body = response.content.decode()
    return response.status_code == 403 and REFUSED in body and words in body


# --- Through the real provider -------------------------------------------------------------------
def test_it_signs_in_with_the_company_account_and_creates_the_user_with_its_groups(client, db, oidc_provider, settings):
    settings.OIDC_GROUP_MAP = {"Finance": "Finance"}
    oidc_provider.set_user(
        "sub-dana",
        {"preferred_username": "dana", "email": "dana@corp.example", "name": "Dana Scully", "groups": ["Finance"]},
    )
    request = start_sign_in(client)
    assert request["code_challenge_method"] == "S256" and request["code_challenge"] and request["nonce"]

    response = client.get(approve_at_provider(request["url"], "sub-dana"))

    assert response.status_code == 302 and response["Location"] == reverse("catalog")
    dana = User.objects.get(username="dana")
    assert (dana.email, dana.first_name, dana.last_name) == ("dana@corp.example", "Dana", "Scully")
    assert not dana.has_usable_password()
    assert names(dana) == {"Finance"}
    assert client.get(reverse("catalog")).context["user"] == dana


def test_it_refuses_an_answer_whose_nonce_is_not_the_one_it_sent(client, db, oidc_provider):
    oidc_provider.set_user("sub-dana", {"preferred_username": "dana"})
    request = start_sign_in(client)
    replayed = request["url"].replace(f"nonce={request['nonce']}", "nonce=someone-elses-nonce")

    response = client.get(approve_at_provider(replayed, "sub-dana"))

    assert refused(response)
    assert not User.objects.filter(username="dana").exists()


def test_it_refuses_a_callback_whose_state_it_did_not_start(client, db, oidc_provider, caplog):
    oidc_provider.set_user("sub-dana", {"preferred_username": "dana"})
    request = start_sign_in(client)
    callback = approve_at_provider(request["url"], "sub-dana").replace(f"state={request['state']}", "state=forged")

    with caplog.at_level(logging.WARNING, logger="actions.security"):
        response = client.get(callback)

    assert refused(response)
    assert not User.objects.filter(username="dana").exists()
    assert any(r.event == "oidc_untrusted" and "state" in r.reason for r in caplog.records)


def test_a_callback_in_a_browser_that_never_started_a_sign_in_is_refused(client, db, oidc_provider):
    response = client.get(reverse("oidc_authentication_callback") + "?code=abc&state=xyz")

    assert refused(response)


def test_a_sign_in_the_employee_cancels_at_the_provider_says_so(client, db, oidc_provider):
    request = start_sign_in(client)

    response = client.get(reverse("oidc_authentication_callback") + f"?error=access_denied&state={request['state']}")

    assert refused(response, "cancelled or refused")


def test_a_provider_that_does_not_answer_gives_a_page_that_says_so(client, db, settings):
    configure(settings, "http://127.0.0.1:9")  # nothing listens there

    response = client.get(reverse("oidc_authentication_init"))

    assert response.status_code == 503 and "did not answer" in response.content.decode()
    provider.forget_discovery()


# --- Refusals of the ID token, forged at the seam -------------------------------------------------
def test_it_signs_in_with_a_genuine_token(client, db, forger):
    request = start_sign_in(client)
    forger.id_token = forger.sign(forger.claims(request["nonce"]))

    response = client.get(reverse("oidc_authentication_callback") + f"?code=c&state={request['state']}")

    assert response.status_code == 302 and User.objects.filter(username="dana").exists()
    [sent] = forger.token_requests
    assert sent["code_verifier"] and sent["client_id"] == "fix-my-device"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("tampered", "signature"),
        ("signed with another key", "signature"),
        ("expired", "expired"),
        ("another audience", "audience"),
        ("another issuer", "issuer"),
        ("another nonce", "Nonce"),
        ("unknown key id", "kid"),
    ],
)
def test_it_refuses_an_id_token_it_cannot_trust(client, db, forger, caplog, case, reason):
    request = start_sign_in(client)
    nonce, now = request["nonce"], int(time.time())
    token = {
        "tampered": lambda: _tamper(forger.sign(forger.claims(nonce)), groups=["Portal admins"]),
        "signed with another key": lambda: forger.sign(forger.claims(nonce), key=_other_key()),
        "expired": lambda: forger.sign(forger.claims(nonce, iat=now - 7200, exp=now - 3600)),
        "another audience": lambda: forger.sign(forger.claims(nonce, aud="another-app")),
        "another issuer": lambda: forger.sign(forger.claims(nonce, iss="https://evil.example")),
        "another nonce": lambda: forger.sign(forger.claims("not-the-nonce")),
        "unknown key id": lambda: forger.sign(forger.claims(nonce), kid="k2"),
    }[case]()
    forger.id_token = token

    with caplog.at_level(logging.WARNING, logger="actions.security"):
        response = client.get(reverse("oidc_authentication_callback") + f"?code=c&state={request['state']}")

    assert refused(response)
    assert User.objects.count() == 0 and not Group.objects.exclude(name=CURATORS_GROUP_NAME).exists()
    assert "_auth_user_id" not in client.session
    assert any(r.event == "oidc_untrusted" and reason in r.reason for r in caplog.records)


def _other_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _tamper(token: str, **changes) -> str:
    """The same header and signature over a payload changed after signing."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) | changes
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_it_never_takes_over_a_local_account_with_a_password(client, alice, forger):
    request = start_sign_in(client)
    forger.id_token = forger.sign(forger.claims(request["nonce"], preferred_username="alice"))

    response = client.get(reverse("oidc_authentication_callback") + f"?code=c&state={request['state']}")

    assert refused(response, "cannot use it to sign you in")
    assert "_auth_user_id" not in client.session


def test_it_links_an_existing_account_without_a_password(client, db, forger):
    dana = User.objects.create_user("dana")  # created by an admin for device assignments; no password
    request = start_sign_in(client)
    forger.id_token = forger.sign(forger.claims(request["nonce"]))

    client.get(reverse("oidc_authentication_callback") + f"?code=c&state={request['state']}")

    assert client.session["_auth_user_id"] == str(dana.pk) and User.objects.count() == 1
    assert (dana.company_identity.issuer, dana.company_identity.subject) == (FORGED_ISSUER, "sub-dana")


def test_a_deactivated_account_is_refused_at_sign_in(client, db, forger):
    User.objects.create_user("dana", is_active=False)
    request = start_sign_in(client)
    forger.id_token = forger.sign(forger.claims(request["nonce"]))

    response = client.get(reverse("oidc_authentication_callback") + f"?code=c&state={request['state']}")

    assert refused(response, "turned off")


# --- Groups from the directory ----------------------------------------------------------------------
def sign_in_with_groups(client, forger, groups) -> User:
    client.logout()
    request = start_sign_in(client)
    forger.id_token = forger.sign(forger.claims(request["nonce"], groups=groups))
    response = client.get(reverse("oidc_authentication_callback") + f"?code=c&state={request['state']}")
    assert response.status_code == 302, response.content
    return User.objects.get(username="dana")


def names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def test_managed_groups_follow_the_directory_and_others_are_left_alone(client, db, forger, settings):
    settings.OIDC_GROUP_MAP = {"0b1c-finance-id": "Finance", "Field staff": "Field staff"}
    by_hand = Group.objects.create(name="Pilot testers")

    dana = sign_in_with_groups(client, forger, ["0b1c-finance-id", "Field staff", "Unmapped"])
    dana.groups.add(by_hand)
    assert names(dana) == {"Finance", "Field staff", "Pilot testers"}

    dana = sign_in_with_groups(client, forger, ["Field staff"])

    assert names(dana) == {"Field staff", "Pilot testers"}
    assert not Group.objects.filter(name="Unmapped").exists()


def test_the_curator_group_makes_staff_curators_and_taking_it_away_undoes_it(client, db, forger, settings):
    settings.OIDC_CURATOR_GROUP = "portal-curators-id"

    dana = sign_in_with_groups(client, forger, ["portal-curators-id"])
    assert dana.is_staff and names(dana) == {CURATORS_GROUP_NAME}

    dana = sign_in_with_groups(client, forger, [])
    assert not dana.is_staff and names(dana) == set()


def test_the_any_device_group_grants_running_on_any_device(client, db, forger, settings):
    settings.OIDC_ANY_DEVICE_GROUP = "it-support"

    dana = sign_in_with_groups(client, forger, ["it-support"])
    assert names(dana) == {ANY_DEVICE_GROUP_NAME}
    assert User.objects.get(pk=dana.pk).has_perm("actions.run_action_on_any_device")

    dana = sign_in_with_groups(client, forger, ["other"])
    assert not User.objects.get(pk=dana.pk).has_perm("actions.run_action_on_any_device")


# --- The account is the company account's (issuer, subject), not its name ---------------------------
def sign_in_as(client, provider_process, sub: str, **claims):
    """One whole sign-in at the real provider as `sub` with these claims; the callback's answer."""
    client.logout()
    provider_process.set_user(sub, {"email": f"{sub}@corp.example", "groups": []} | claims)
    return client.get(approve_at_provider(start_sign_in(client)["url"], sub))


def signed_in_user(client):
    return User.objects.get(pk=client.session["_auth_user_id"])


def test_a_returning_employee_is_found_by_subject_even_after_the_directory_renamed_them(client, db, oidc_provider):
    assert sign_in_as(client, oidc_provider, "sub-dana", preferred_username="dana").status_code == 302
    dana = signed_in_user(client)
    make_device(dana, name="LAPTOP-DANA")

    assert sign_in_as(client, oidc_provider, "sub-dana", preferred_username="dana.scully").status_code == 302

    assert signed_in_user(client) == dana
    assert User.objects.get(pk=dana.pk).username == "dana.scully"  # the account follows the directory's name
    assert dana.devices.count() == 1 and User.objects.count() == 1
    assert (dana.company_identity.issuer, dana.company_identity.subject) == (oidc_provider.url, "sub-dana")


def test_a_reused_user_name_does_not_inherit_the_former_owners_account(client, db, oidc_provider):
    sign_in_as(client, oidc_provider, "sub-dana-leaver", preferred_username="dana")
    leaver = signed_in_user(client)
    make_device(leaver, name="LAPTOP-LEAVER")

    # The directory gives "dana" to a newcomer: another subject with the same name claim.
    response = sign_in_as(client, oidc_provider, "sub-dana-newcomer", preferred_username="dana")

    assert refused(response, "cannot use it to sign you in")
    assert "_auth_user_id" not in client.session
    assert User.objects.count() == 1 and CompanyIdentity.objects.get().subject == "sub-dana-leaver"

    # IT renames the leaver's account: the newcomer's next sign-in makes their own, with nothing of the leaver's.
    User.objects.filter(pk=leaver.pk).update(username="dana-left-2026")
    assert sign_in_as(client, oidc_provider, "sub-dana-newcomer", preferred_username="dana").status_code == 302
    newcomer = signed_in_user(client)
    assert newcomer != leaver and newcomer.username == "dana" and newcomer.devices.count() == 0
    assert newcomer.company_identity.subject == "sub-dana-newcomer"


def test_an_account_made_before_subjects_were_kept_is_linked_at_its_first_sign_in(client, db, oidc_provider):
    dana = User.objects.create_user("dana", email="sub-dana@corp.example")  # no password, no subject yet

    assert sign_in_as(client, oidc_provider, "sub-dana", preferred_username="dana").status_code == 302

    assert signed_in_user(client) == dana
    assert dana.company_identity.subject == "sub-dana"
    assert refused(sign_in_as(client, oidc_provider, "sub-other", preferred_username="dana"), "cannot use it to sign")


def test_an_old_account_whose_e_mail_is_someone_elses_is_not_linked(client, db, oidc_provider):
    User.objects.create_user("dana", email="dana.former@corp.example")

    response = sign_in_as(client, oidc_provider, "sub-dana", preferred_username="dana")

    assert refused(response, "cannot use it to sign you in")
    assert not CompanyIdentity.objects.exists() and User.objects.count() == 1


def test_a_rename_to_a_name_another_account_holds_keeps_the_old_name(client, db, forger):
    request = start_sign_in(client)
    forger.id_token = forger.sign(forger.claims(request["nonce"]))
    client.get(reverse("oidc_authentication_callback") + f"?code=c&state={request['state']}")
    dana = User.objects.get(username="dana")
    User.objects.create_user("dana.scully")  # someone else's account
    client.logout()

    request = start_sign_in(client)
    forger.id_token = forger.sign(forger.claims(request["nonce"], preferred_username="dana.scully"))
    client.get(reverse("oidc_authentication_callback") + f"?code=c&state={request['state']}")

    assert client.session["_auth_user_id"] == str(dana.pk)
    assert User.objects.get(pk=dana.pk).username == "dana"


def test_the_same_subject_at_another_issuer_is_another_account(db, settings):
    """Unit test of the backend: the pair is the key, a subject alone is not (another tenant may reuse it)."""
    from actions.accounts.backends import PortalOIDCBackend, SignInRefused

    settings.OIDC_USERNAME_CLAIM = "preferred_username"
    backend = PortalOIDCBackend()
    backend.get_userinfo = lambda access_token, id_token, payload: dict(payload)
    first = backend.get_or_create_user(None, None, {"iss": "https://a.example", "sub": "s1", "preferred_username": "x"})

    with pytest.raises(SignInRefused, match="belongs to another company account"):
        backend.get_or_create_user(None, None, {"iss": "https://b.example", "sub": "s1", "preferred_username": "x"})
    again = backend.get_or_create_user(None, None, {"iss": "https://a.example", "sub": "s1", "preferred_username": "x"})

    assert again == first and CompanyIdentity.objects.count() == 1


def test_an_account_unused_for_long_is_not_linked_to_a_new_subject(client, db, oidc_provider):
    """A leaver's account from before subjects were kept: its name may have been given to someone else."""
    from datetime import timedelta

    from django.utils import timezone

    from actions.accounts.backends import LEGACY_LINK_DAYS

    leaver = User.objects.create_user("dana", email="sub-dana@corp.example")
    User.objects.filter(pk=leaver.pk).update(last_login=timezone.now() - timedelta(days=LEGACY_LINK_DAYS + 1))

    assert refused(sign_in_as(client, oidc_provider, "sub-dana", preferred_username="dana"), "cannot use it to sign")
    assert not CompanyIdentity.objects.exists()

    User.objects.filter(pk=leaver.pk).update(last_login=timezone.now() - timedelta(days=LEGACY_LINK_DAYS - 1))
    assert sign_in_as(client, oidc_provider, "sub-dana", preferred_username="dana").status_code == 302
    assert signed_in_user(client) == leaver  # used lately: its owner coming back


def test_a_refused_inactive_account_gets_nothing_of_the_sign_in(client, db, forger):
    dana = User.objects.create_user("dana", email="", first_name="", is_active=False)
    request = start_sign_in(client)
    forger.id_token = forger.sign(forger.claims(request["nonce"], groups=["Field staff"]))

    response = client.get(reverse("oidc_authentication_callback") + f"?code=c&state={request['state']}")

    assert refused(response, "turned off")
    dana.refresh_from_db()
    assert (dana.email, dana.first_name, dana.groups.count()) == ("", "", 0)
    assert not CompanyIdentity.objects.exists()
