"""Authentication backends: the company account (OpenID Connect), local passwords, the SSO proxy's header."""

from __future__ import annotations

import logging
from datetime import timedelta

import jwt
from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend, RemoteUserBackend
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from actions.accounts.groups import claim_values, directory_groups_sync
from actions.accounts.users import user_by_pk
from actions.integrations import oidc_provider as provider
from actions.models import CompanyIdentity

log = logging.getLogger("actions.accounts")
# Clocks of the provider and the portal may differ this much (seconds) when exp and iat are checked.
CLOCK_SKEW_SECONDS = 60


# An account made by a sign-in before subjects were kept is linked to a new subject only if it was
# used this recently: an older one may be a leaver's whose name the directory gave to someone else.
LEGACY_LINK_DAYS = 90


class SignInRefused(Exception):
    """The provider's answer is genuine but names no account the portal may sign in."""


class PortalOIDCBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's code flow, with discovery, audience and issuer checks and the directory's groups.

    mozilla-django-oidc checks the signature, expiry and nonce of the ID token; it checks neither
    audience nor issuer (5.0), which this class adds. Its HTTP goes through actions.integrations.oidc_provider.
    """

    def __init__(self, *args, **kwargs):
        # Nothing here may call the provider: Django builds every backend for every sign-in,
        # local ones included, and a provider that is down must not stop a password sign-in.
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.UserModel = get_user_model()

    def authenticate(self, request, **kwargs):
        if not settings.OIDC_ENABLED:
            return None
        return super().authenticate(request, **kwargs)

    def get_user(self, user_id):
        user = user_by_pk(user_id)  # mozilla-django-oidc's read, compiled once (actions/accounts/users.py)
        return user if user is not None and user.is_active else None

    # --- The provider's HTTP, through the one seam --------------------------------------------
    def get_token(self, payload):
        response = provider.post_token(payload, None)
        self.raise_token_response_error(response)
        return response.json()

    def retrieve_matching_jwk(self, token):
        header = jwt.get_unverified_header(token)
        for key in provider.fetch_jwks().get("keys", []):
            if key.get("kid") == header.get("kid") and key.get("alg", header.get("alg")) == header.get("alg"):
                return jwt.PyJWK(key)
        raise SuspiciousOperation("no key of the provider's JWKS matches the ID token's kid")

    def get_userinfo(self, access_token, id_token, payload):
        """The ID token's claims, completed by the userinfo endpoint where there is one.

        Entra ID, for one, sends groups only in the ID token, so the token's claims stay the base.
        """
        info = provider.fetch_userinfo(access_token) if access_token else None
        if info is None:
            return dict(payload)
        if info.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("the userinfo answer is about another subject than the ID token")
        return {**payload, **info}

    # --- The ID token ---------------------------------------------------------------------------
    def _verify_jws(self, payload, key):
        alg = jwt.get_unverified_header(payload).get("alg")
        if alg != self.OIDC_RP_SIGN_ALGO:
            raise SuspiciousOperation(f"the ID token is signed with {alg!r}, not {self.OIDC_RP_SIGN_ALGO}")
        try:
            claims = jwt.decode(
                payload,
                key,
                algorithms=[alg],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=settings.OIDC_ISSUER,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iat", "aud", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise SuspiciousOperation("the ID token has expired") from None
        except jwt.InvalidAudienceError:
            raise SuspiciousOperation("the ID token is meant for another client (audience)") from None
        except jwt.InvalidIssuerError:
            raise SuspiciousOperation("the ID token comes from another issuer") from None
        except jwt.InvalidSignatureError:
            raise SuspiciousOperation("the ID token's signature does not verify") from None
        except jwt.InvalidTokenError as exc:
            raise SuspiciousOperation(f"the ID token is not valid: {exc}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.OIDC_RP_CLIENT_ID:
            raise SuspiciousOperation("the ID token has several audiences and another authorized party")
        return claims

    # --- The account ----------------------------------------------------------------------------
    @transaction.atomic
    def get_or_create_user(self, access_token, id_token, payload):
        """The portal user of the company account (issuer, subject); made on its first sign-in.

        The name claim only names the account: the directory may give a leaver's name to a
        newcomer, and the newcomer must not inherit the leaver's devices and runs. So an account is
        found by its (iss, sub) pair, and a name already held by another company account is refused
        (an admin renames the old account, and the newcomer's next sign-in makes a new one).
        """
        claims = self.get_userinfo(access_token, id_token, payload)
        issuer, subject = payload["iss"], payload["sub"]  # required and checked by _verify_jws
        username = self._username(claims)
        identity = (
            CompanyIdentity.objects.select_for_update()
            .select_related("user")
            .filter(issuer=issuer, subject=subject)
            .first()
        )
        if identity is not None:
            user = identity.user
            self._follow_rename(user, username)
        else:
            user = self._account_for_new_subject(username, claims)
        if not user.is_active:
            return user  # refused as turned off, with nothing of this sign-in written into the account
        self._copy_profile(user, claims)
        user.save()
        if identity is None:
            identity = CompanyIdentity.objects.create(user=user, issuer=issuer, subject=subject)
        if identity is not None:
            CompanyIdentity.objects.filter(pk=identity.pk).update(last_sign_in_at=timezone.now())
        directory_groups_sync(user=user, values=claim_values(claims.get(settings.OIDC_GROUPS_CLAIM)))
        return user

    def _username(self, claims) -> str:
        username = claims.get(settings.OIDC_USERNAME_CLAIM)
        if not isinstance(username, str) or not username.strip():
            raise SignInRefused(f"the provider sent no {settings.OIDC_USERNAME_CLAIM} claim")
        return username.strip()[: self.UserModel._meta.get_field("username").max_length]

    def _same_name(self, username: str):
        users = list(self.UserModel.objects.select_for_update().filter(username__iexact=username)[:2])
        if len(users) > 1:
            raise SignInRefused(f"several portal accounts are named {username!r} (differing in case)")
        return users[0] if users else None

    def _account_for_new_subject(self, username: str, claims):
        """A subject signing in for the first time: a new account, or one made before subjects were kept."""
        user = self._same_name(username)
        if user is None:
            user = self.UserModel(username=username)
            user.set_unusable_password()
            return user
        if user.has_usable_password():
            # A local account (demo, break-glass admin) is never taken over by a directory name.
            raise SignInRefused(f"{username!r} is a local account with a password")
        if CompanyIdentity.objects.filter(user=user).exists():
            raise SignInRefused(
                f"{username!r} belongs to another company account; the directory gave the name to someone "
                "else. Rename the old portal account to let the new one be made."
            )
        # Made by an admin for device assignments (never signed in), or by a sign-in before subjects
        # were kept: only an account used lately can be its owner coming back; a name unused for
        # longer may have been given to someone else, and an admin decides (renames it, or links it
        # by signing in with that person present).
        stale = timezone.now() - timedelta(days=LEGACY_LINK_DAYS)
        if user.last_login is not None and user.last_login < stale:
            raise SignInRefused(
                f"{username!r} is an account without a company account, last used {user.last_login:%Y-%m-%d}: "
                "the name may belong to someone else now. Rename the old portal account, or clear its last "
                "sign-in in the admin if it is this person's."
            )
        # Taken over only when nothing says it is someone else's: its e-mail, if it has one, is the
        # claim's (and a verified one, when the e-mail is what names the account).
        email = claims.get(settings.OIDC_EMAIL_CLAIM)
        if settings.OIDC_USERNAME_CLAIM == settings.OIDC_EMAIL_CLAIM and claims.get("email_verified") is False:
            raise SignInRefused(f"{username!r}: the provider says this e-mail is not verified")
        if user.email and (not isinstance(email, str) or email.strip().lower() != user.email.lower()):
            raise SignInRefused(
                f"{username!r} is an account of e-mail {user.email!r} without a company account; the claim's "
                "e-mail differs. Set its e-mail or rename it to say whose it is."
            )
        return user

    def _follow_rename(self, user, username: str) -> None:
        """The directory renamed a known employee: the account follows, unless the name is taken."""
        if user.username.lower() == username.lower():
            return
        if self.UserModel.objects.filter(username__iexact=username).exclude(pk=user.pk).exists():
            log.warning("company account %s is now named %r, held by another account: kept", user.pk, username)
            return
        log.info("company account %s renamed from %r to %r", user.pk, user.username, username)
        user.username = username

    @staticmethod
    def _copy_profile(user, claims) -> None:
        email = claims.get(settings.OIDC_EMAIL_CLAIM)
        if isinstance(email, str):
            user.email = email.strip()[:254]
        name = claims.get(settings.OIDC_NAME_CLAIM)
        given, family = claims.get("given_name"), claims.get("family_name")
        if isinstance(given, str) or isinstance(family, str):
            user.first_name, user.last_name = (given or "")[:150], (family or "")[:150]
        elif isinstance(name, str):
            first, _, last = name.strip().partition(" ")
            user.first_name, user.last_name = first[:150], last[:150]


class PasswordThrottleBackend(AxesStandaloneBackend):
    """django-axes' lock-out check, for web sign-ins: a call without a request (a script, a shell)
    is not a guess over the network, and axes would refuse it outright."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class CompiledUserReadBackend(ModelBackend):
    """ModelBackend.get_user with the user read by a query compiled once (actions/accounts/users.py)."""

    def get_user(self, user_id):
        user = user_by_pk(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None


class LocalLoginBackend(CompiledUserReadBackend):
    """User name and password, while LOCAL_LOGIN is on (demo users, break-glass admins)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if not settings.LOCAL_LOGIN:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class ProxyHeaderBackend(CompiledUserReadBackend, RemoteUserBackend):
    """The user name an SSO proxy put in REMOTE_USER_HEADER; the middleware decides whether to trust it."""

    def authenticate(self, request, *args, remote_user=None, **credentials):
        # Callable as ModelBackend's is, as a subclass's must be (RemoteUserBackend's own signature
        # breaks that rule): other credentials (a user name and password) are not for this backend,
        # and no remote_user signs nobody in.
        if not settings.REMOTE_USER_HEADER or not remote_user or args or credentials:
            return None
        return super().authenticate(request, remote_user)

    def configure_user(self, request, user, created=True):
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        return user
