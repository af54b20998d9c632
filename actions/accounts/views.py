"""Sign-in and sign-out pages: the company account button, the local form, the refusal page."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext, gettext_noop
from django.views import i18n
from django.views.decorators.http import require_POST
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from actions.accounts.backends import SignInRefused
from actions.accounts.middleware import SIGNED_OUT_REASON_KEY
from actions.integrations import oidc_provider as provider
from actions.security import client_address, sign_in_event

SIGNED_OUT_MESSAGES = {
    "idle": gettext_noop("You were signed out after a while without activity. Sign in again to go on."),
    "max_age": gettext_noop("Your session reached its time limit. Sign in again to go on."),
}
REFUSALS = {
    "untrusted": gettext_noop(
        "Your company's sign-in service sent an answer the portal could not verify, so you are not signed in. "
        "Try again; if it happens again, contact your IT service desk."
    ),
    "unavailable": gettext_noop(
        "The company sign-in service did not answer, so you are not signed in. Try again in a few minutes."
    ),
    "account": gettext_noop(
        "Your company account is valid, but the portal cannot use it to sign you in. "
        "Contact your IT service desk and tell them the time you tried."
    ),
    "inactive": gettext_noop("Your portal account is turned off. Contact your IT service desk."),
    "denied": gettext_noop("The company sign-in was cancelled or refused, so you are not signed in. Try again."),
}


def refuse(request, kind: str, reason: str, *, username: str = "", level: int = logging.WARNING):
    """The one page for a refused company sign-in, and its security event."""
    sign_in_event(f"oidc_{kind}", username=username, source_address=client_address(request), reason=reason, level=level)
    status = 503 if kind == "unavailable" else 403
    return render(request, "registration/sign_in_failed.html", {"message": gettext(REFUSALS[kind])}, status=status)


@method_decorator(login_not_required, name="dispatch")
class LoginView(auth_views.LoginView):
    """The sign-in page: the company account button (OIDC on) and the password form (LOCAL_LOGIN on)."""

    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["oidc_enabled"] = settings.OIDC_ENABLED
        context["local_login"] = settings.LOCAL_LOGIN
        reason = self.request.session.pop(SIGNED_OUT_REASON_KEY, "")
        context["signed_out_message"] = gettext(SIGNED_OUT_MESSAGES[reason]) if reason in SIGNED_OUT_MESSAGES else None
        return context

    def post(self, request, *args, **kwargs):
        if not settings.LOCAL_LOGIN:
            sign_in_event(
                "local_login_disabled",
                username=request.POST.get("username", ""),
                source_address=client_address(request),
                reason="LOCAL_LOGIN is off",
            )
            return self.render_to_response(self.get_context_data(), status=403)
        return super().post(request, *args, **kwargs)


@method_decorator(login_not_required, name="dispatch")
class AuthenticateView(OIDCAuthenticationRequestView):
    """Redirects to the provider with state, nonce and a PKCE challenge (kept in the session)."""

    def __init__(self, *args, **kwargs):
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID

    def get(self, request):
        if not settings.OIDC_ENABLED:
            raise Http404("OpenID Connect is not configured")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider.discovery()["authorization_endpoint"]
        except provider.ProviderError as exc:
            return refuse(request, "unavailable", str(exc), level=logging.ERROR)
        return super().get(request)


@method_decorator(login_not_required, name="dispatch")
class CallbackView(OIDCAuthenticationCallbackView):
    """The provider's redirect back: state from the session, then the backend's checks of the token."""

    def get(self, request):
        if not settings.OIDC_ENABLED:
            raise Http404("OpenID Connect is not configured")
        try:
            return super().get(request)
        except SignInRefused as exc:
            return refuse(request, "account", str(exc))
        except SuspiciousOperation as exc:
            return refuse(request, "untrusted", str(exc))
        except (provider.ProviderError, requests.RequestException) as exc:
            return refuse(request, "unavailable", str(exc), level=logging.ERROR)

    def login_failure(self):
        request = self.request
        if request.GET.get("error"):
            return refuse(request, "denied", f"provider error {request.GET['error'][:100]}", level=logging.INFO)
        user = getattr(self, "user", None)
        if user is not None and not user.is_active:
            return refuse(request, "inactive", "the account is inactive", username=user.get_username())
        if "code" in request.GET and "state" in request.GET:
            return refuse(request, "untrusted", "no sign-in was started in this session (state unknown)")
        return refuse(request, "untrusted", "the answer has no code and state")


@login_not_required
@require_POST
def set_language(request):
    """Django's set_language (the language cookie, then back to `next`), open before sign-in: the
    sign-in page's language switch. A GET changes nothing (Django's view); refused here."""
    return i18n.set_language(request)


@login_not_required
@require_POST
def logout(request):
    """Ends the portal session, then the provider's too where it offers RP-initiated logout."""
    id_token = request.session.get("oidc_id_token")
    auth.logout(request)
    end_session = None
    if id_token and settings.OIDC_ENABLED:
        try:
            end_session = provider.endpoint("end_session_endpoint")
        except provider.ProviderError:
            end_session = None  # the portal session is over anyway; the provider's may outlive it
    if end_session:
        query = urlencode(
            {
                "id_token_hint": id_token,
                "client_id": settings.OIDC_RP_CLIENT_ID,
                "post_logout_redirect_uri": request.build_absolute_uri(reverse("login")),
            }
        )
        separator = "&" if "?" in end_session else "?"
        return HttpResponseRedirect(f"{end_session}{separator}{query}")
    return HttpResponseRedirect(resolve_url(settings.LOGOUT_REDIRECT_URL))
